"""Console sign-in through a SAML 2.0 identity provider: a local pysaml2 IdP on loopback with a
key made at test time (tests/support/saml_idp.py), the console as the service provider.

A valid response signs the person in with the role and team its attributes map to; each
refusal (a stranger's signature, another audience, another destination, expired, unsigned,
replayed, posted into a browser that did not start the sign-in) is a 403 page naming the check,
and a log entry that names it too but holds nothing of the assertion. The browser sign-in itself (real Chromium) is
in test_console_saml_browser.py."""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from html import unescape
from pathlib import Path

import httpx
import pytest

from egress.admin.saml import SAML_COOKIE
from egress.admin.sessions import COOKIE
from egress.core.records import ConsoleLogin
from tests.support.console import ConsoleGateway, console_gateway
from tests.support.gateway import free_port
from tests.support.saml_idp import OTHER_SP, LocalSamlIdp, SentRequest
from tests.support.simulator import UpstreamSimulator

FIELD = re.compile(r'name="(SAMLResponse|RelayState)" value="([^"]*)"')


@pytest.fixture(scope="module")
def idp() -> Iterator[LocalSamlIdp]:
    started = LocalSamlIdp().start()
    yield started
    started.stop()


@contextmanager
def saml_console(tmp: Path, sim: UpstreamSimulator, metadata_url: str, **saml: object) -> Iterator[ConsoleGateway]:
    port = free_port()
    settings = {"idp_metadata_url": metadata_url, "admin_groups": ["staff"], "user_attribute": "mail", **saml}
    with console_gateway(
        tmp, sim.url, server={"public_url": f"http://127.0.0.1:{port}"}, port=port, saml=settings
    ) as running:
        yield running


@pytest.fixture(scope="module")
def console(
    sim: UpstreamSimulator, idp: LocalSamlIdp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleGateway]:
    with saml_console(tmp_path_factory.mktemp("saml"), sim, idp.url + "/metadata", clock_skew_s=5) as running:
        # The IdP knows the console from the metadata the console serves.
        idp.trust(httpx.get(running.url + "/admin/saml/metadata").text)
        yield running


def start(client: httpx.Client, idp: LocalSamlIdp, next_path: str = "/admin/traffic") -> SentRequest:
    """Start a sign-in in this browser; returns the AuthnRequest it sent to the IdP."""
    begun = client.get(f"/admin/login/saml?next={next_path}")
    assert begun.status_code == 303, begun.text
    assert begun.headers["location"].startswith(idp.url + "/sso?SAMLRequest=")
    assert SAML_COOKIE in client.cookies
    return idp.read_request(begun.headers["location"])


def post(client: httpx.Client, sent: SentRequest, saml_response: str, relay_state: str | None = None) -> httpx.Response:
    """What the IdP's auto-submitting form posts to the ACS (cross-origin: the IdP's Origin)."""
    return client.post(
        "/admin/saml/acs",
        data={"SAMLResponse": saml_response, "RelayState": sent.relay_state if relay_state is None else relay_state},
        headers={"origin": "http://127.0.0.1:1"},
    )


def test_the_sp_metadata_names_the_console(console: ConsoleGateway) -> None:
    answer = httpx.get(console.url + "/admin/saml/metadata")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/samlmetadata+xml")
    assert f'entityID="{console.url}/admin/saml/metadata"' in answer.text
    acs = re.search(r"<[^>]*AssertionConsumerService [^>]*>", answer.text)
    assert acs is not None
    assert f'Location="{console.url}/admin/saml/acs"' in acs.group(0)
    assert 'Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"' in acs.group(0)


def test_the_idp_form_signs_a_team_lead_in(console: ConsoleGateway, idp: LocalSamlIdp) -> None:
    client = console.browser()
    assert 'href="/admin/login/saml?next=/admin/approvals"' in client.get("/admin/login?next=/admin/approvals").text
    begun = client.get("/admin/login/saml?next=/admin/approvals")
    # The IdP's own sign-on page (HTTP-Redirect in, HTTP-POST form out), with another user.
    saved = idp.attributes
    idp.attributes = {"mail": ["lin@example.org"], "team": ["payments"], "groups": ["engineering"]}
    try:
        form = httpx.get(begun.headers["location"])
    finally:
        idp.attributes = saved
    assert form.status_code == 200 and f'action="{console.url}/admin/saml/acs"' in form.text
    fields = {name: unescape(value) for name, value in FIELD.findall(form.text)}
    done = client.post("/admin/saml/acs", data=fields, headers={"origin": idp.url})
    assert done.status_code == 303 and done.headers["location"] == "/admin/approvals", done.text
    assert COOKIE in client.cookies
    page = client.get("/admin/traffic")
    assert "lin@example.org (team lead of payments)" in page.text
    assert client.get("/admin/policy").status_code == 403


def test_an_assertion_signed_alone_is_accepted(console: ConsoleGateway, idp: LocalSamlIdp) -> None:
    client = console.browser()
    sent = start(client, idp)
    done = post(client, sent, idp.posted(sent, sign_response=False, sign_assertion=True))
    assert done.status_code == 303, done.text
    assert "dana@example.org (admin)" in client.get("/admin/traffic").text


REFUSALS = {
    "bad signature": ({"stranger_key": True}, "signature does not verify"),
    "wrong audience": ({"audience": OTHER_SP}, "meant for another service provider (Audience)"),
    "wrong destination": ({"destination": "https://elsewhere.example/acs"}, "not addressed to this console"),
    "expired": ({"aged_minutes": 10}, "expired (NotOnOrAfter is past)"),
    "unsigned": ({"sign_response": False, "sign_assertion": False}, "unsigned"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_each_bad_response_is_refused_and_logged(
    console: ConsoleGateway, idp: LocalSamlIdp, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    variant, reason = REFUSALS[case]
    client = console.browser()
    sent = start(client, idp)
    mallory = {"mail": ["mallory@example.org"], "groups": ["staff"]}
    crafted = idp.posted(sent, name_id="mallory@example.org", attributes=mallory, **variant)
    with caplog.at_level(logging.DEBUG):  # everything, pysaml2's own logs included
        refused = post(client, sent, crafted)
    assert refused.status_code == 403
    assert reason in refused.text and "sign-in refused" in refused.text
    assert COOKIE not in client.cookies
    assert client.get("/admin/traffic").status_code == 303  # not signed in
    logged = [r.getMessage() for r in caplog.records if r.name == "egress.admin"]
    assert any("console SAML sign-in refused" in m and reason in m for m in logged), logged
    everything = "\n".join(r.getMessage() for r in caplog.records)
    assert "mallory" not in everything and crafted[:64] not in everything and "Assertion" not in everything


def test_a_replayed_assertion_is_refused(
    console: ConsoleGateway, idp: LocalSamlIdp, caplog: pytest.LogCaptureFixture
) -> None:
    client = console.browser()
    sent = start(client, idp)
    cookie = client.cookies[SAML_COOKIE]
    answer = idp.posted(sent)
    assert post(client, sent, answer).status_code == 303
    # Posted again: the sign-in it answered is spent.
    again = console.browser()
    again.cookies.set(SAML_COOKIE, cookie)
    spent = post(again, sent, answer)
    assert spent.status_code == 403 and "unknown, used or expired" in spent.text
    # Even with that sign-in in progress put back (a copy of its row), the assertion itself is
    # remembered in the store until it expires: it signs no one in twice.
    login_hash = hashlib.sha256(cookie.encode()).hexdigest()
    record = ConsoleLogin(login_hash, sent.relay_state, sent.request_id, "saml", "/admin/traffic", time.time() + 60)
    console.store.console_login_put(record, time.time())
    with caplog.at_level(logging.INFO):
        replayed = post(again, sent, answer)
    assert replayed.status_code == 403 and "used already (replay)" in replayed.text
    assert COOKIE not in again.cookies
    assert any("replay" in r.getMessage() for r in caplog.records if r.name == "egress.admin")


def test_a_response_posted_into_another_browser_is_refused(console: ConsoleGateway, idp: LocalSamlIdp) -> None:
    """Login CSRF / session fixation: the attacker's own valid response, posted from a page
    into the victim's browser, matches no sign-in that browser started."""
    attacker = console.browser()
    sent = start(attacker, idp)
    answer = idp.posted(sent)
    victim = console.browser()
    refused = post(victim, sent, answer)
    assert refused.status_code == 403 and "start again" in refused.text
    assert COOKIE not in victim.cookies
    # The victim's own sign-in in progress does not take the attacker's RelayState either.
    start(victim, idp)
    wrong = post(victim, sent, answer)
    assert wrong.status_code == 403 and "RelayState does not match" in wrong.text


def test_metadata_that_cannot_be_read_refuses_sign_in(
    sim: UpstreamSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/metadata"
    with caplog.at_level(logging.WARNING):
        with saml_console(tmp_path, sim, closed, metadata_timeout_s=2) as running:
            client = running.browser()
            refused = client.get("/admin/login/saml")
            assert refused.status_code == 502
            shown = unescape(refused.text)
            assert "SAML sign-in is unavailable: the identity provider's metadata URL cannot be reached" in shown
            assert SAML_COOKIE not in client.cookies
            assert httpx.get(running.url + "/admin/saml/metadata").status_code == 200  # the SP's own still served
    assert any("metadata URL cannot be reached" in r.getMessage() for r in caplog.records)
