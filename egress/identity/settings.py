"""The `auth.oidc` section of the configuration: which OIDC tokens the gateway accepts
(egress.config types its field as this; egress.identity.oidc verifies tokens with it).

Its defaults are defined here only. Validated when the configuration loads: the algorithm
allowlist (asymmetric only) and the issuer's scheme are checked here, once."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from egress.identity.oidc_terms import DEFAULT_ALGORITHMS, KEY_TYPES, require_secure_url


class OidcSettings(BaseModel):
    """OIDC tokens (JWT) accepted besides gateway keys; egress/identity/oidc.py says what is checked."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    issuer: str = Field(description="the issuer URL, exactly as in the tokens' iss claim (https, or http on loopback)")
    audience: tuple[str, ...] = Field(description="accepted aud values (a token's aud must contain one)")
    jwks_url: str | None = Field(
        default=None, description="default: jwks_uri from <issuer>/.well-known/openid-configuration"
    )
    algorithms: tuple[str, ...] = Field(
        default=DEFAULT_ALGORITHMS, description=f"asymmetric only, among {', '.join(KEY_TYPES)}; never none or HS*"
    )
    user_claim: str | None = Field(default=None, description="the claim naming the user; default email, then sub")
    team_claim: str = Field(
        default="groups", description="the team claim: a string, or a list whose first item is used"
    )
    leeway_s: float = Field(default=60.0, ge=0, le=300, description="clock skew allowed on exp, nbf and iat")
    jwks_cache_s: float = Field(default=600.0, gt=0, le=86_400, description="how long fetched keys are trusted")
    jwks_refetch_min_s: float = Field(
        default=30.0, ge=0, le=3600, description="an unknown kid refetches the keys at most this often"
    )
    required_claims: tuple[str, ...] = Field(default=(), description="claims a token must carry besides exp, iss, aud")
    scope_claim: str | None = Field(
        default=None,
        description="the claim holding the caller's scope: an object {apis, models, endpoints} of lists, or a "
        "space-separated string of apis:X models:X endpoints:X items; absent in a token: unscoped",
    )
    service_account_claim: str | None = Field(
        default=None, description="a claim that, when a non-empty string, names the service account (a pipeline)"
    )
    token_cache_entries: int = Field(default=10_000, ge=0, description="verified tokens remembered by digest")
    ca_bundle: str | None = Field(default=None, description="CA file to reach the issuer; default the system store")

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("audience")
    @classmethod
    def _some_audience(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(value):
            raise ValueError("at least one non-empty audience is required")
        return value

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _secure(cls, value: str | None) -> str | None:
        return value if value is None else require_secure_url(value)

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        # The one algorithm check: `none` and HS* never pass, so a public key is never an HMAC secret.
        refused = [a for a in value if a not in KEY_TYPES]
        if refused or not value:
            raise ValueError(
                f"{refused[0] if refused else 'an empty list'} is not accepted; use {', '.join(KEY_TYPES)}"
            )
        return value


class SamlSettings(BaseModel):
    """A SAML 2.0 service provider (egress/identity/saml.py says what is checked): who it is, where
    the identity provider's metadata comes from, and how much clock skew is allowed."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    sp_entity_id: str | None = Field(
        default=None, description="this service provider's entity id (the Audience); default its metadata URL"
    )
    acs_url: str | None = Field(
        default=None, description="the assertion consumer service URL (HTTP-POST); default <public URL>/admin/saml/acs"
    )
    idp_metadata_file: str | None = Field(default=None, description="the identity provider's metadata, from a file")
    idp_metadata_url: str | None = Field(
        default=None, description="…or from a URL (https, or http on loopback), fetched at start and refreshed"
    )
    idp_entity_id: str | None = Field(
        default=None, description="which identity provider of the metadata; default the only one it describes"
    )
    metadata_refresh_s: float = Field(default=3600.0, gt=0, le=7 * 86400, description="metadata is read again after this")
    metadata_timeout_s: float = Field(default=10.0, gt=0, le=120, description="a metadata fetch gives up after this")
    clock_skew_s: float = Field(default=60.0, ge=0, le=300, description="allowed on NotBefore and NotOnOrAfter")
    sp_key_file: str | None = Field(default=None, description="PEM key signing the AuthnRequests (with sp_cert_file)")
    sp_cert_file: str | None = Field(default=None, description="its certificate, published in the SP metadata")
    xmlsec_binary: str | None = Field(default=None, description="the xmlsec1 program; default the one on PATH")
    ca_bundle: str | None = Field(default=None, description="CA file to fetch the metadata; default the system store")

    @field_validator("idp_metadata_url")
    @classmethod
    def _secure_metadata(cls, value: str | None) -> str | None:
        return value if value is None else require_secure_url(value)

    @model_validator(mode="after")
    def _one_source(self) -> SamlSettings:
        if (self.idp_metadata_file is None) == (self.idp_metadata_url is None):
            raise ValueError("give exactly one of idp_metadata_file and idp_metadata_url")
        if (self.sp_key_file is None) != (self.sp_cert_file is None):
            raise ValueError("sp_key_file and sp_cert_file go together")
        return self
