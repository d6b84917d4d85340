"""The SAML service provider proper, on pysaml2: its client, configuration, sign-in request and
response checks (egress.identity.saml describes what it accepts).

A module of its own because pysaml2 compiles the SAML XML schemas when imported (~0.7 s): the
gateway imports it only when `console.saml` is configured (egress/app.py), so `egress serve`
starts without it.
"""

from __future__ import annotations

import base64
import binascii
import logging
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.response import StatusError, UnsolicitedResponse, VerificationError
from saml2.sigver import SignatureError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from egress.identity.saml import (
    DEFAULT_LIFETIME_S,
    DIGEST_ALG,
    MAX_RESPONSE_BYTES,
    NAMEID_UNSPECIFIED,
    RETRY_S,
    SIGN_ALG,
    AuthnRedirect,
    SamlIdentity,
    SamlRefused,
    idp_entity_ids,
    read_metadata,
    signed_parts,
)
from egress.identity.settings import SamlSettings

log = logging.getLogger("egress.identity.saml")


class ServiceProvider:
    """Thread-safe: `refresh` swaps the pysaml2 client under a lock; the rest only reads it."""

    def __init__(
        self, settings: SamlSettings, *, entity_id: str, acs_url: str, clock: Callable[[], float] = time.time
    ) -> None:
        xmlsec = settings.xmlsec_binary or shutil.which("xmlsec1")
        if xmlsec is None or not Path(xmlsec).exists():
            raise ValueError("SAML sign-in needs the xmlsec1 program: install it (apt-get install xmlsec1)")
        # pysaml2 logs whole responses and assertions at DEBUG: its logs stop at INFO, whatever
        # level the rest runs at, so no assertion reaches a log.
        library_log = logging.getLogger("saml2")
        if library_log.level < logging.INFO:
            library_log.setLevel(logging.INFO)
        self.settings = settings
        self.entity_id = entity_id
        self.acs_url = acs_url
        self.xmlsec = xmlsec
        self.clock = clock
        self._lock = threading.Lock()
        self._client: Saml2Client | None = None
        self._idp: str | None = None
        self._failure: str | None = "the identity provider's metadata has not been read yet"
        self._read_at: float | None = None
        self._sp_metadata = str(entity_descriptor(self._config(None)))
        self.refresh()

    # --- configuration ------------------------------------------------------------------------

    def _config(self, idp_metadata: str | None) -> SPConfig:
        s = self.settings
        signing = s.sp_key_file is not None
        raw: dict[str, Any] = {
            "entityid": self.entity_id,
            "xmlsec_binary": self.xmlsec,
            "accepted_time_diff": int(s.clock_skew_s),
            "allow_unknown_attributes": True,
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]},
                    "allow_unsolicited": False,
                    "want_response_signed": False,
                    "want_assertions_signed": False,
                    "want_assertions_or_response_signed": True,
                    "authn_requests_signed": signing,
                    "name_id_format": [NAMEID_UNSPECIFIED],
                }
            },
        }
        if signing:
            raw["key_file"] = s.sp_key_file
            raw["cert_file"] = s.sp_cert_file
        if idp_metadata is not None:
            raw["metadata"] = {"inline": [idp_metadata]}
        config = SPConfig()
        config.load(raw)
        return config

    def metadata(self) -> str:
        """This service provider's metadata (entity id, ACS, signing certificate when set)."""
        return self._sp_metadata

    # --- the identity provider's metadata ---------------------------------------------------

    def due(self) -> bool:
        """Whether the IdP's metadata should be read again (never read, or older than the refresh)."""
        read_at = self._read_at
        if read_at is None:
            return True
        # With no metadata yet, sign-ins are refused: try again sooner than the refresh.
        every = (
            self.settings.metadata_refresh_s
            if self._client is not None
            else min(self.settings.metadata_refresh_s, RETRY_S)
        )
        return self.clock() - read_at >= every

    def refresh(self) -> None:
        """Read the IdP's metadata again. A failure is logged and kept as the reason sign-ins are
        refused while no metadata was ever read; earlier metadata stays in use."""
        now = self.clock()
        try:
            xml = read_metadata(self.settings)
            idps = idp_entity_ids(xml)
            wanted = self.settings.idp_entity_id
            if wanted is not None and wanted not in idps:
                raise SamlRefused(f"the identity provider's metadata does not describe {wanted!r}")
            if wanted is None and len(idps) != 1:
                raise SamlRefused(f"the metadata describes {len(idps)} identity providers: name one with idp_entity_id")
            idp = wanted or idps[0]
            client = Saml2Client(self._config(xml))
        except SamlRefused as exc:
            log.warning("SAML: %s", exc.message)
            with self._lock:
                self._read_at = now
                if self._client is None:
                    self._failure = exc.message
            return
        except Exception as exc:  # noqa: BLE001 - pysaml2 raises many kinds on bad metadata
            log.warning("SAML: the identity provider's metadata was refused (%s)", type(exc).__name__)
            with self._lock:
                self._read_at = now
                if self._client is None:
                    self._failure = "the identity provider's metadata was refused (not SAML 2.0 metadata)"
            return
        with self._lock:
            self._client, self._idp, self._failure, self._read_at = client, idp, None, now

    def _ready(self) -> tuple[Saml2Client, str]:
        with self._lock:
            client, idp, failure = self._client, self._idp, self._failure
        if client is None or idp is None:
            raise SamlRefused(f"SAML sign-in is unavailable: {failure}")
        return client, idp

    # --- sign-in ----------------------------------------------------------------------------

    def begin(self, relay_state: str) -> AuthnRedirect:
        """An AuthnRequest for the HTTP-Redirect binding (signed when sp_key_file is set)."""
        client, idp = self._ready()
        signing = self.settings.sp_key_file is not None
        request_id, info = client.prepare_for_authenticate(
            entityid=idp,
            relay_state=relay_state,
            binding=BINDING_HTTP_REDIRECT,
            sign=signing,
            sigalg=SIGN_ALG if signing else None,
            digest_alg=DIGEST_ALG if signing else None,
        )
        location = dict(info["headers"]).get("Location")
        if not isinstance(location, str):
            raise SamlRefused("the identity provider has no HTTP-Redirect sign-in endpoint in its metadata")
        return AuthnRedirect(str(request_id), location)

    def finish(self, saml_response: str, request_id: str) -> SamlIdentity:
        """The verified subject of the answer to `request_id`. Raises SamlRefused."""
        client, idp = self._ready()
        if len(saml_response) > MAX_RESPONSE_BYTES * 4 // 3 + 4:
            raise SamlRefused("the SAML response is too large")
        try:
            xml = base64.b64decode(saml_response, validate=True)
        except (binascii.Error, ValueError):
            raise SamlRefused("the SAML response is not base64") from None
        response_signed, assertion_signed = signed_parts(xml)
        if not (response_signed or assertion_signed):
            raise SamlRefused("the SAML response is unsigned: neither the response nor its assertion is signed")
        try:
            answer = client.parse_authn_request_response(
                saml_response, BINDING_HTTP_POST, outstanding={request_id: request_id}
            )
        except Exception as exc:  # noqa: BLE001 - pysaml2 signals each failed check with its own type
            raise SamlRefused(_refusal(exc)) from None
        if answer is None or answer.assertion is None:
            raise SamlRefused("the SAML response is not addressed to this console (Destination) or cannot be read")
        issuer = answer.issuer()
        if issuer != idp:
            raise SamlRefused("the SAML response comes from another identity provider than the configured one")
        if answer.in_response_to != request_id:
            raise SamlRefused("the SAML response does not answer this sign-in (InResponseTo)")
        name_id = answer.name_id.text if answer.name_id is not None else None
        if not name_id:
            raise SamlRefused("the SAML assertion names no subject (NameID)")
        attributes = {
            str(name): tuple(str(v) for v in (values if isinstance(values, list) else [values]))
            for name, values in (answer.ava or {}).items()
        }
        now = self.clock()
        expires_at = float(answer.not_on_or_after) if answer.not_on_or_after else now + DEFAULT_LIFETIME_S
        return SamlIdentity(
            issuer=issuer,
            name_id=str(name_id),
            assertion_id=str(answer.assertion.id),
            expires_at=expires_at,
            attributes=attributes,
        )


def _refusal(exc: Exception) -> str:
    """The check a pysaml2 exception stands for (its own message may quote the response)."""
    text = str(exc)
    if isinstance(exc, SigverError) and "Neither the response nor the assertions are signed" in text:
        return "the SAML response is unsigned: neither the response nor its assertion is signed"
    if isinstance(exc, SignatureError | SigverError):
        return "the SAML response's signature does not verify with the identity provider's key"
    if isinstance(exc, ResponseLifetimeExceed):
        return "the SAML assertion has expired (NotOnOrAfter is past)"
    if isinstance(exc, ToEarly):
        return "the SAML assertion is not valid yet (NotBefore is in the future)"
    if isinstance(exc, UnsolicitedResponse):
        return "the SAML response does not answer this sign-in (InResponseTo)"
    if isinstance(exc, StatusError):
        return "the identity provider refused the sign-in (status not Success)"
    if "AudienceRestrictions" in text:
        return "the SAML assertion is meant for another service provider (Audience)"
    if isinstance(exc, VerificationError) and "recipient" in text.lower():
        return "the SAML assertion is meant for another address (Recipient)"
    if isinstance(exc, VerificationError):
        return "the SAML assertion's subject confirmation or conditions do not hold"
    return f"the SAML response was refused ({type(exc).__name__})"
