"""What an OIDC configuration may say, without the JWT library: the asymmetric algorithms egress
accepts (with the JWK key type each needs) and the rule for issuer and key URLs.
egress.identity.settings checks the configuration with these at load; egress.identity.oidc
verifies tokens with the same ones.
Kept apart so that reading the configuration (every CLI command) does not import PyJWT and
cryptography."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urlsplit

# Asymmetric algorithms only, with the JWK key type (and curve) each one needs.
KEY_TYPES: Mapping[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", None),
}
DEFAULT_ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")
_LOOPBACK_NAMES = frozenset({"localhost"})


def require_secure_url(url: str) -> str:
    """An issuer or key URL must be https, except on loopback (tests, a local IdP). Raises ValueError."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname and _is_loopback(parts.hostname):
        return url
    raise ValueError("must be an https:// URL (http:// only on a loopback address)")


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
