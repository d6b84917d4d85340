"""The SAML service provider's parts that need no browser: its settings, reading the IdP's
metadata (file, URL, failures), which parts of a response carry a signature, the refusals that
come before any signature check, and the replay table shared by processes (SQLite, PostgreSQL)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from egress.admin.settings import ConsoleSettings
from egress.identity.saml import (
    RETRY_S,
    SIGN_ALG,
    SamlRefused,
    idp_entity_ids,
    read_metadata,
    signed_parts,
)
from egress.identity.saml_sp import ServiceProvider
from egress.identity.settings import SamlSettings
from egress.store.base import SqlStore
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore
from tests.support.databases import throwaway_postgres
from tests.support.loopback import LoopbackServer
from tests.support.saml_idp import LocalSamlIdp, key_pair

P = "urn:oasis:names:tc:SAML:2.0:protocol"
A = "urn:oasis:names:tc:SAML:2.0:assertion"
D = "http://www.w3.org/2000/09/xmldsig#"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"


# --- settings -----------------------------------------------------------------------------


def test_exactly_one_metadata_source() -> None:
    with pytest.raises(ValidationError, match="exactly one of idp_metadata_file and idp_metadata_url"):
        SamlSettings()
    with pytest.raises(ValidationError, match="exactly one"):
        SamlSettings(idp_metadata_file="idp.xml", idp_metadata_url="https://idp.example.org/md")
    assert SamlSettings(idp_metadata_file="idp.xml").clock_skew_s == 60


def test_metadata_url_must_be_https_off_loopback() -> None:
    with pytest.raises(ValidationError, match="https"):
        SamlSettings(idp_metadata_url="http://idp.example.org/metadata")
    assert SamlSettings(idp_metadata_url="http://127.0.0.1:9/metadata").idp_metadata_url


def test_key_and_certificate_go_together_and_skew_is_bounded() -> None:
    with pytest.raises(ValidationError, match="go together"):
        SamlSettings(idp_metadata_file="idp.xml", sp_key_file="sp.key")
    with pytest.raises(ValidationError):
        SamlSettings(idp_metadata_file="idp.xml", clock_skew_s=3600)


def test_the_console_section_takes_saml_with_the_role_mapping() -> None:
    console = ConsoleSettings.model_validate(
        {"saml": {"idp_metadata_file": "idp.xml", "admin_groups": ["ops"], "team_attribute": "dept"}}
    )
    assert console.saml is not None
    assert console.saml.admin_groups == ("ops",) and console.saml.team_attribute == "dept"
    assert console.saml.groups_attribute == "groups" and console.saml.user_attribute is None
    with pytest.raises(ValidationError):
        ConsoleSettings.model_validate({"saml": {"idp_metadata_file": "idp.xml", "admins": ["ops"]}})


# --- metadata ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def idp() -> Iterator[LocalSamlIdp]:
    started = LocalSamlIdp().start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def metadata_server() -> Iterator[str]:
    """/slow never answers in time, /error answers 500, /huge sends more than 1 MiB."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="<late/>")

    async def error(request: web.Request) -> web.Response:
        return web.Response(status=500, text="down")

    async def huge(request: web.Request) -> web.Response:
        return web.Response(text="<x>" + "a" * (1 << 20) + "</x>")

    app = web.Application()
    app.router.add_get("/slow", slow)
    app.router.add_get("/error", error)
    app.router.add_get("/huge", huge)
    server = LoopbackServer(app, "metadata")
    port = server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_metadata_from_a_file_and_a_url(idp: LocalSamlIdp, tmp_path: Path) -> None:
    path = tmp_path / "idp.xml"
    path.write_text(idp.metadata())
    from_file = read_metadata(SamlSettings(idp_metadata_file=str(path)))
    from_url = read_metadata(SamlSettings(idp_metadata_url=idp.url + "/metadata"))
    assert idp_entity_ids(from_file) == idp_entity_ids(from_url) == [idp.entity_id]


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("/slow", "did not answer within 0.5 s"),
        ("/error", "answered HTTP 500"),
        ("/huge", "larger than 1 MiB"),
    ],
)
def test_metadata_url_failures_say_what_failed(metadata_server: str, where: str, reason: str) -> None:
    with pytest.raises(SamlRefused, match=reason):
        read_metadata(SamlSettings(idp_metadata_url=metadata_server + where, metadata_timeout_s=0.5))


def test_a_missing_file_is_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(SamlRefused, match="metadata file cannot be read"):
        read_metadata(SamlSettings(idp_metadata_file=str(tmp_path / "absent.xml")))


def test_entity_ids_of_identity_providers_only() -> None:
    federation = (
        f'<md:EntitiesDescriptor xmlns:md="{MD}">'
        f'<md:EntityDescriptor entityID="https://a.example/idp"><md:IDPSSODescriptor/></md:EntityDescriptor>'
        f'<md:EntityDescriptor entityID="https://b.example/sp"><md:SPSSODescriptor/></md:EntityDescriptor>'
        f'<md:EntityDescriptor entityID="https://c.example/idp"><md:IDPSSODescriptor/></md:EntityDescriptor>'
        "</md:EntitiesDescriptor>"
    )
    assert idp_entity_ids(federation) == ["https://a.example/idp", "https://c.example/idp"]
    with pytest.raises(SamlRefused, match="not well-formed"):
        idp_entity_ids("<md:EntitiesDescriptor")


def test_several_idps_need_one_named(idp: LocalSamlIdp, tmp_path: Path) -> None:
    one = idp.metadata()  # a single EntityDescriptor
    other = one.replace(idp.entity_id, "https://other.example/idp")
    two = f'<md:EntitiesDescriptor xmlns:md="{MD}">{one}{other}</md:EntitiesDescriptor>'
    path = tmp_path / "two.xml"
    path.write_text(two)
    common = {
        "entity_id": "https://egress.example/admin/saml/metadata",
        "acs_url": "https://egress.example/admin/saml/acs",
    }
    unnamed = ServiceProvider(SamlSettings(idp_metadata_file=str(path)), **common)
    with pytest.raises(SamlRefused, match="describes 2 identity providers: name one with idp_entity_id"):
        unnamed.begin("relay")
    named = ServiceProvider(SamlSettings(idp_metadata_file=str(path), idp_entity_id=idp.entity_id), **common)
    assert named.begin("relay").url.startswith(idp.url + "/sso?SAMLRequest=")


def test_without_xmlsec1_saml_does_not_start(tmp_path: Path) -> None:
    settings = SamlSettings(idp_metadata_file="idp.xml", xmlsec_binary=str(tmp_path / "no-xmlsec1"))
    with pytest.raises(ValueError, match="apt-get install xmlsec1"):
        ServiceProvider(settings, entity_id="https://e.example/sp", acs_url="https://e.example/acs")


# --- signed AuthnRequests and metadata refresh -----------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


SP_ID = "https://egress.example/admin/saml/metadata"
ACS = "https://egress.example/admin/saml/acs"


def test_authn_requests_are_signed_with_the_sp_key(idp: LocalSamlIdp, tmp_path: Path) -> None:
    path = tmp_path / "idp.xml"
    path.write_text(idp.metadata())
    pair = key_pair(tmp_path, "sp")
    settings = SamlSettings(idp_metadata_file=str(path), sp_key_file=pair.key_file, sp_cert_file=pair.cert_file)
    sp = ServiceProvider(settings, entity_id=SP_ID, acs_url=ACS)
    metadata = sp.metadata()
    assert 'AuthnRequestsSigned="true"' in metadata and "X509Certificate" in metadata
    url = sp.begin("relay-1").url
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["SigAlg"] == SIGN_ALG and query["Signature"] and query["RelayState"] == "relay-1"
    idp.want_signed_requests = True
    try:
        idp.trust(metadata)
        assert idp.read_request(url).sp_entity_id == SP_ID  # the IdP verified the signature
        forged = url.replace("RelayState=relay-1", "RelayState=relay-2")
        with pytest.raises(Exception, match="not signed correctly"):
            idp.read_request(forged)
        unsigned = ServiceProvider(SamlSettings(idp_metadata_file=str(path)), entity_id=SP_ID, acs_url=ACS)
        with pytest.raises(Exception, match="(?i)sign"):
            idp.read_request(unsigned.begin("relay-3").url)
    finally:
        idp.want_signed_requests = False


def test_metadata_is_read_again_and_a_failed_first_read_is_retried(idp: LocalSamlIdp) -> None:
    served = {"up": False}

    async def metadata(request: web.Request) -> web.Response:
        if not served["up"]:
            return web.Response(status=503)
        return web.Response(text=idp.metadata())

    app = web.Application()
    app.router.add_get("/md", metadata)
    server = LoopbackServer(app, "toggled-metadata")
    port = server.start()
    try:
        clock = Clock(1_000.0)
        settings = SamlSettings(idp_metadata_url=f"http://127.0.0.1:{port}/md", metadata_refresh_s=3600)
        sp = ServiceProvider(settings, entity_id=SP_ID, acs_url=ACS, clock=clock)
        with pytest.raises(SamlRefused, match="unavailable: the identity provider's metadata URL answered HTTP 503"):
            sp.begin("r")
        served["up"] = True
        assert not sp.due()
        clock.now += RETRY_S  # with no metadata yet, retried after RETRY_S, not the hour
        assert sp.due()
        sp.refresh()
        assert sp.begin("r").url.startswith(idp.url + "/sso?")
        # Later failures keep the metadata read before; a refresh is due after the hour.
        served["up"] = False
        clock.now += 60
        assert not sp.due()
        clock.now += 3600
        assert sp.due()
        sp.refresh()
        assert sp.begin("r").url.startswith(idp.url + "/sso?")
    finally:
        server.stop()


# --- what a response carries -------------------------------------------------------------------


def _response(response_signed: bool, assertions: list[bool], nested: bool) -> bytes:
    signature = f'<ds:Signature xmlns:ds="{D}"/>'
    body = "".join(
        f'<saml:Assertion xmlns:saml="{A}" ID="a{i}">{signature if signed else ""}</saml:Assertion>'
        for i, signed in enumerate(assertions)
    )
    # A signature deeper down (inside an Advice, say) signs neither the response nor an assertion.
    deeper = f'<saml:Advice xmlns:saml="{A}">{signature}</saml:Advice>' if nested else ""
    head = signature if response_signed else ""
    return f'<samlp:Response xmlns:samlp="{P}" ID="r">{head}{deeper}{body}</samlp:Response>'.encode()


@given(st.booleans(), st.lists(st.booleans(), max_size=3), st.booleans())
def test_signed_parts_sees_enveloped_signatures_only(
    response_signed: bool, assertions: list[bool], nested: bool
) -> None:
    assert signed_parts(_response(response_signed, assertions, nested)) == (response_signed, any(assertions))


def test_not_a_response_or_not_xml() -> None:
    with pytest.raises(SamlRefused, match="not a Response"):
        signed_parts(f'<samlp:LogoutRequest xmlns:samlp="{P}"/>'.encode())
    with pytest.raises(SamlRefused, match="not well-formed"):
        signed_parts(b"<samlp:Response")
    with pytest.raises(SamlRefused, match="declares entities"):
        signed_parts(b'<!DOCTYPE x [<!ENTITY e "boom">]><x>&e;</x>')  # no entity expansion, ever


def test_refusals_before_any_signature_check(idp: LocalSamlIdp, tmp_path: Path) -> None:
    path = tmp_path / "idp.xml"
    path.write_text(idp.metadata())
    sp = ServiceProvider(
        SamlSettings(idp_metadata_file=str(path)),
        entity_id="https://egress.example/admin/saml/metadata",
        acs_url="https://egress.example/admin/saml/acs",
    )
    with pytest.raises(SamlRefused, match="not base64"):
        sp.finish("not base64 at all!", "id-1")
    unsigned = base64.b64encode(_response(False, [False], nested=True)).decode()
    with pytest.raises(SamlRefused, match="unsigned"):
        sp.finish(unsigned, "id-1")


# --- replay across processes -----------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[SqlStore, SqlStore]]:
    """Two store handles on one database, as two gateway processes have."""
    if request.param == "sqlite":
        first: SqlStore = SqliteStore(tmp_path / "egress.db")
        first.migrate()
        second: SqlStore = SqliteStore(tmp_path / "egress.db")
        yield first, second
        first.close()
        second.close()
        return
    with throwaway_postgres() as url:
        first = PostgresStore(url)
        first.migrate()
        second = PostgresStore(url)
        yield first, second
        first.close()
        second.close()


def test_an_assertion_is_used_once_across_processes_until_it_expires(two_processes: tuple[SqlStore, SqlStore]) -> None:
    first, second = two_processes
    assert first.saml_assertion_remember("a" * 64, expires_at=1_000.0, now=900.0)
    assert not second.saml_assertion_remember("a" * 64, expires_at=1_000.0, now=950.0)  # a replay
    assert not first.saml_assertion_remember("a" * 64, expires_at=1_000.0, now=999.0)
    assert second.saml_assertion_remember("b" * 64, expires_at=1_000.0, now=950.0)  # another one
    # Once expired, the row is dropped (the assertion's own time check refuses it by then).
    assert second.saml_assertion_remember("a" * 64, expires_at=2_000.0, now=1_000.0)
