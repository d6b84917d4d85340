"""SAML 2.0 Web Browser SSO for a service provider (the console), with pysaml2.

API (the console calls it from a worker thread: pysaml2 is synchronous and runs `xmlsec1`)::

    sp = ServiceProvider(settings, entity_id=..., acs_url=...)   # saml_sp.py; reads the IdP's metadata once
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

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests
from defusedxml import DefusedXmlException, ElementTree

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
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
# Without NotOnOrAfter in an assertion (pysaml2 requires one on the subject confirmation), it is
# remembered this long.
DEFAULT_LIFETIME_S = 3600.0


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
