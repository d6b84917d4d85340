"""A local SAML 2.0 identity provider on loopback, for the tests: pysaml2 in IdP mode (the library
egress uses as the SP), with an RSA key and self-signed certificate generated at test time.

It serves what a real one does over HTTP — its metadata at `/metadata` and single sign-on at
`/sso` (HTTP-Redirect binding: it reads the AuthnRequest, signs the test user in at once and
answers with the HTTP-POST form that carries a signed Response to the ACS) — and crafts the
responses an attacker or a broken IdP would send: signed by a stranger's key, meant for another
service provider, expired, unsigned.
"""

from __future__ import annotations

import base64
import datetime
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_UNSPECIFIED, NameID
from saml2.server import Server

from egress.identity.saml import DIGEST_ALG, SIGN_ALG
from tests.support.loopback import LoopbackServer

XMLSEC = "/usr/bin/xmlsec1"
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
_ROOT_ID = re.compile(r'<(?:\w+:)?Response [^>]*ID="([^"]+)"')
INSTALL = "apt-get update -qq && apt-get install -y -qq xmlsec1"
OTHER_SP = "https://other-service.example/saml"  # a service provider the assertion may be misdirected to
PASSWORD_CLASS = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"


@dataclass(frozen=True)
class KeyPair:
    key_file: str
    cert_file: str


def key_pair(folder: Path, name: str) -> KeyPair:
    """A fresh RSA-2048 key and a self-signed certificate valid from yesterday for two days."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return KeyPair(str(key_path), str(cert_path))


@dataclass(frozen=True)
class SentRequest:
    """What an SP's redirect to /sso carried."""

    request_id: str
    acs_url: str
    sp_entity_id: str
    relay_state: str


class LocalSamlIdp:
    """Start with `LocalSamlIdp(...).start()`, then `trust(<the SP's metadata>)` before a sign-in."""

    def __init__(self, name_id: str = "dana@example.org", attributes: dict[str, list[str]] | None = None) -> None:
        if not Path(XMLSEC).exists():
            raise RuntimeError(f"xmlsec1 is not installed at {XMLSEC}; install it with: {INSTALL}")
        self.folder = Path(tempfile.mkdtemp(prefix="saml-idp-"))
        self.keys = key_pair(self.folder, "idp")
        self.stranger = key_pair(self.folder, "stranger")  # not in the metadata
        self.name_id = name_id
        self.attributes = attributes or {"mail": [name_id], "groups": ["staff", "engineering"]}
        self.port = 0
        self.sp_metadata: list[str] = []
        self.want_signed_requests = False
        self._server: LoopbackServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def entity_id(self) -> str:
        return self.url + "/idp"

    def start(self) -> LocalSamlIdp:
        app = web.Application()
        app.router.add_get("/metadata", self._metadata)
        app.router.add_get("/sso", self._sso)
        self._server = LoopbackServer(app, "saml-idp")
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    # --- configuration ------------------------------------------------------------------------

    def _config(self, keys: KeyPair, lifetime_minutes: int = 5, with_sps: bool = True) -> IdPConfig:
        raw: dict[str, Any] = {
            "entityid": self.entity_id,
            "key_file": keys.key_file,
            "cert_file": keys.cert_file,
            "xmlsec_binary": XMLSEC,
            "service": {
                "idp": {
                    "endpoints": {"single_sign_on_service": [(self.url + "/sso", BINDING_HTTP_REDIRECT)]},
                    "policy": {"default": {"lifetime": {"minutes": lifetime_minutes}, "attribute_restrictions": None}},
                    "name_id_format": [NAMEID_FORMAT_UNSPECIFIED],
                    "want_authn_requests_signed": self.want_signed_requests,
                }
            },
        }
        if with_sps and self.sp_metadata:
            raw["metadata"] = {"inline": list(self.sp_metadata)}
        config = IdPConfig()
        config.load(raw)
        return config

    def metadata(self) -> str:
        return str(entity_descriptor(self._config(self.keys, with_sps=False)))

    def trust(self, sp_metadata: str) -> None:
        """Serve this SP (its metadata as the SP publishes it), and a second SP at the same ACS
        (OTHER_SP) so a response meant for another audience can be made."""
        acs = _acs_of(sp_metadata)
        other = SPConfig()
        other.load(
            {
                "entityid": OTHER_SP,
                "service": {"sp": {"endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]}}},
            }
        )
        self.sp_metadata = [sp_metadata, str(entity_descriptor(other))]

    # --- responses ----------------------------------------------------------------------------

    def read_request(self, redirect_url: str) -> SentRequest:
        """The AuthnRequest an SP's redirect carries (its signature, if any, is not checked)."""
        query = dict(parse_qsl(urlsplit(redirect_url).query))
        # With want_signed_requests, pysaml2 checks the redirect's signature (SigAlg, Signature)
        # against the certificate in the SP's metadata, and refuses a request without one.
        request = Server(config=self._config(self.keys)).parse_authn_request(
            query["SAMLRequest"],
            BINDING_HTTP_REDIRECT,
            relay_state=query.get("RelayState"),
            sigalg=query.get("SigAlg"),
            signature=query.get("Signature"),
        )
        message = request.message
        return SentRequest(
            str(message.id),
            str(message.assertion_consumer_service_url),
            str(message.issuer.text),
            query.get("RelayState", ""),
        )

    def response(
        self,
        sent: SentRequest,
        *,
        audience: str | None = None,
        destination: str | None = None,
        sign_response: bool = True,
        sign_assertion: bool = False,
        stranger_key: bool = False,
        aged_minutes: int = 0,
        name_id: str | None = None,
        attributes: dict[str, list[str]] | None = None,
    ) -> str:
        """A Response to `sent` (XML)."""
        server = Server(config=self._config(self.stranger if stranger_key else self.keys))
        made = server.create_authn_response(
            identity=attributes or self.attributes,
            in_response_to=sent.request_id,
            destination=destination or sent.acs_url,
            sp_entity_id=audience or sent.sp_entity_id,
            name_id=NameID(format=NAMEID_FORMAT_UNSPECIFIED, text=name_id or self.name_id),
            authn={"class_ref": PASSWORD_CLASS},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=SIGN_ALG,
            digest_alg=DIGEST_ALG,
        )
        xml = str(made)
        if aged_minutes:
            # Issued `aged_minutes` ago: every instant moved back, then signed again by the IdP.
            xml = _TIME.sub(lambda m: _earlier(m.group(0), aged_minutes), xml)
            root_id = _ROOT_ID.search(xml)
            assert root_id is not None and sign_response
            xml = server.sec.sign_statement(
                xml, "urn:oasis:names:tc:SAML:2.0:protocol:Response", node_id=root_id.group(1)
            )
        return xml

    def posted(self, sent: SentRequest, **variant: Any) -> str:
        """`response(sent, **variant)`, base64 as the HTTP-POST binding carries it."""
        return base64.b64encode(self.response(sent, **variant).encode("utf-8")).decode("ascii")

    # --- HTTP ---------------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metadata(), content_type="application/samlmetadata+xml")

    async def _sso(self, request: web.Request) -> web.Response:
        sent = self.read_request(str(request.url))
        form = Server(config=self._config(self.keys)).apply_binding(
            BINDING_HTTP_POST, self.response(sent), sent.acs_url, sent.relay_state, response=True
        )
        return web.Response(text=str(form["data"]), content_type="text/html")


def _earlier(instant: str, minutes: int) -> str:
    when = datetime.datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ") - datetime.timedelta(minutes=minutes)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _acs_of(sp_metadata: str) -> str:
    marker = 'Location="'
    start = sp_metadata.index(marker, sp_metadata.index("AssertionConsumerService")) + len(marker)
    return sp_metadata[start : sp_metadata.index('"', start)]
