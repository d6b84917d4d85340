"""SAML 2.0 Web Browser SSO for a service provider (the console), with pysaml2.

API (the console calls it from a worker thread: pysaml2 is synchronous and runs `xmlsec1`)::

    sp = ServiceProvider(settings, entity_id=..., acs_url=...)   # reads the IdP's metadata once
    sp.metadata()                          # this SP's metadata (served at /admin/saml/metadata)
    redirect = sp.begin(relay_state)       # HTTP-Redirect AuthnRequest: send the browser to .url
    who = sp.finish(saml_response, redirect.request_id)   # the HTTP-POST answer at the ACS

What `finish` accepts, and nothing else (each refusal raises `SamlRefused` with a message that
names the check, never the assertion's content):
- a signature: the Response or its Assertion signed by a key the IdP's metadata publishes;
  an unsigned response is refused before any other check, and so is a bad signature;
- the Response's Destination and the SubjectConfirmationData's Recipient are this ACS URL;
- the Assertion's Audience is this SP's entity id;
- InResponseTo is the request this browser's sign-in sent (no unsolicited responses);
- NotBefore / NotOnOrAfter hold now, give or take `clock_skew_s`;
- the issuer is the configured identity provider.
Replay (the same assertion twice) is the caller's to refuse, with `SamlIdentity.replay_key`
and `expires_at`: it needs the shared store (egress.admin.saml).

The IdP's metadata is read from a file or fetched from a URL (bounded by `metadata_timeout_s`,
at most 1 MiB) at construction and again by `refresh` once `metadata_refresh_s` passed. A
failed read keeps the last metadata read; with none read yet, every sign-in is refused with the
reason (`SamlRefused`), never accepted unsigned.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from defusedxml import DefusedXmlException, ElementTree
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.response import StatusError, UnsolicitedResponse, VerificationError
from saml2.sigver import SignatureError, SigverError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from egress.identity.settings import SamlSettings

log = logging.getLogger("egress.identity.saml")

SIGN_ALG = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
DIGEST_ALG = "http://www.w3.org/2001/04/xmlenc#sha256"
MAX_METADATA_BYTES = 1 << 20
MAX_RESPONSE_BYTES = 1 << 20
RETRY_S = 30.0  # a failed first read of the IdP's metadata is retried this often
_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
_ASSERTION = "urn:oasis:names:tc:SAML:2.0:assertion"
_DSIG = "http://www.w3.org/2000/09/xmldsig#"
_MD = "urn:oasis:names:tc:SAML:2.0:metadata"
_NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
# Without NotOnOrAfter in an assertion (pysaml2 requires one on the subject confirmation), it is
# remembered this long.
_DEFAULT_LIFETIME_S = 3600.0


class SamlRefused(Exception):
    """A sign-in refused; the message names the failed check and is safe to show and log."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class AuthnRedirect:
    """An AuthnRequest sent: its ID (the answer's InResponseTo) and where to send the browser."""

    request_id: str
    url: str


@dataclass(frozen=True, slots=True)
class SamlIdentity:
    """A verified assertion's subject. `attributes` keeps every value of every attribute."""

    issuer: str
    name_id: str
    assertion_id: str = field(repr=False)
    expires_at: float  # the assertion's NotOnOrAfter (Unix seconds)
    attributes: Mapping[str, tuple[str, ...]]

    @property
    def replay_key(self) -> str:
        """What identifies this assertion among all the IdP ever issues (SHA-256, hex)."""
        return hashlib.sha256(f"{self.issuer}\n{self.assertion_id}".encode()).hexdigest()

    def first(self, name: str) -> str | None:
        values = self.attributes.get(name, ())
        return values[0] if values else None


def read_metadata(settings: SamlSettings) -> str:
    """The IdP's metadata XML, from the file or the URL. Raises SamlRefused saying what failed."""
    if settings.idp_metadata_file is not None:
        try:
            return Path(settings.idp_metadata_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise SamlRefused(f"the identity provider's metadata file cannot be read ({exc.strerror})") from None
    url = settings.idp_metadata_url or ""
    try:
        with requests.get(
            url,
            timeout=settings.metadata_timeout_s,
            verify=settings.ca_bundle or True,
            allow_redirects=False,
            stream=True,
        ) as answer:
            if answer.status_code != 200:
                raise SamlRefused(f"the identity provider's metadata URL answered HTTP {answer.status_code}")
            body = answer.raw.read(MAX_METADATA_BYTES + 1, decode_content=True)
    except requests.Timeout:
        raise SamlRefused(
            f"the identity provider's metadata URL did not answer within {settings.metadata_timeout_s:g} s"
        ) from None
    except requests.RequestException as exc:
        raise SamlRefused(f"the identity provider's metadata URL cannot be reached ({type(exc).__name__})") from None
    if len(body) > MAX_METADATA_BYTES:
        raise SamlRefused("the identity provider's metadata is larger than 1 MiB")
    return bytes(body).decode("utf-8", errors="replace")


def idp_entity_ids(metadata_xml: str) -> list[str]:
    """The entity ids of the identity providers the metadata describes."""
    try:
        root = ElementTree.fromstring(metadata_xml.encode("utf-8"))
    except (ElementTree.ParseError, DefusedXmlException):
        raise SamlRefused("the identity provider's metadata is not well-formed XML (or declares entities)") from None
    entities = [root] if root.tag == f"{{{_MD}}}EntityDescriptor" else root.iter(f"{{{_MD}}}EntityDescriptor")
    return [
        str(e.get("entityID"))
        for e in entities
        if e.get("entityID") and e.find(f"{{{_MD}}}IDPSSODescriptor") is not None
    ]


def signed_parts(response_xml: bytes) -> tuple[bool, bool]:
    """(Response signed, an Assertion signed): whether an enveloped ds:Signature is present.
    Whether it verifies is pysaml2's (xmlsec1's) to say."""
    try:
        root = ElementTree.fromstring(response_xml)
    except (ElementTree.ParseError, DefusedXmlException):
        raise SamlRefused("the SAML response is not well-formed XML (or declares entities)") from None
    if root.tag != f"{{{_PROTOCOL}}}Response":
        raise SamlRefused("the SAML message is not a Response")
    response_signed = root.find(f"{{{_DSIG}}}Signature") is not None
    assertion_signed = any(
        a.find(f"{{{_DSIG}}}Signature") is not None for a in root.findall(f"{{{_ASSERTION}}}Assertion")
    )
    return response_signed, assertion_signed


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
                    "name_id_format": [_NAMEID_UNSPECIFIED],
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
        expires_at = float(answer.not_on_or_after) if answer.not_on_or_after else now + _DEFAULT_LIFETIME_S
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
