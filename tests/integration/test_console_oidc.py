"""Console sign-in through an identity provider (a local OIDC issuer on loopback, serving the
authorization-code flow with PKCE): the role comes from the group and team claims; a used,
forged or role-less sign-in is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from egress.admin.sessions import COOKIE
from tests.support.console import ConsoleGateway, altered, console_gateway
from tests.support.databases import throwaway_postgres
from tests.support.oidc_issuer import LocalIssuer
from tests.support.simulator import UpstreamSimulator

CLIENT = "egress-console"


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    started = LocalIssuer(audience=CLIENT).start()
    started.clients[CLIENT] = None  # a public client: PKCE, no secret
    yield started
    started.stop()


@pytest.fixture
def console(upstream: UpstreamSimulator, issuer: LocalIssuer, tmp_path: Path) -> Iterator[ConsoleGateway]:
    oidc = {"issuer": issuer.url, "client_id": CLIENT, "admin_groups": ["staff"]}
    with console_gateway(tmp_path, upstream.url, oidc=oidc) as running:
        yield running


def to_provider(client: httpx.Client, next_path: str = "/admin/traffic") -> str:
    """Start a sign-in; the provider signs the test user in and answers with the callback URL."""
    start = client.get(f"/admin/login/oidc?next={next_path}")
    assert start.status_code == 303, start.text
    at_provider = httpx.get(start.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    callback = urlsplit(at_provider.headers["location"])
    assert callback.path == "/admin/oidc/callback"
    return f"{callback.path}?{callback.query}"


def test_a_group_member_signs_in_as_admin(console: ConsoleGateway, issuer: LocalIssuer) -> None:
    client = console.browser()
    assert 'href="/admin/login/oidc"' in client.get("/admin/login").text
    done = client.get(to_provider(client, "/admin/approvals"))
    assert done.status_code == 303 and done.headers["location"] == "/admin/approvals"
    assert COOKIE in client.cookies
    page = client.get("/admin/traffic")
    assert page.status_code == 200 and "dana@example.org (admin)" in page.text
    assert client.get("/admin/policy").status_code == 200


def test_a_team_claim_makes_a_team_lead(console: ConsoleGateway, issuer: LocalIssuer) -> None:
    issuer.user = {"sub": "u-2002", "email": "lin@example.org", "team": "payments", "groups": ["engineering"]}
    client = console.browser()
    assert client.get(to_provider(client)).status_code == 303
    page = client.get("/admin/traffic")
    assert "lin@example.org (team lead of payments)" in page.text
    assert client.get("/admin/policy").status_code == 403


def test_no_role_no_replay_no_forged_state(console: ConsoleGateway, issuer: LocalIssuer) -> None:
    client = console.browser()
    callback = to_provider(client)
    # The state must be the one this browser's sign-in started with.
    path, _, query = callback.partition("?")
    params = dict(parse_qsl(query))
    forged = client.get(f"{path}?{urlencode({**params, 'state': altered(params['state'])})}")
    assert forged.status_code == 403 and "state" in forged.text and COOKIE not in client.cookies
    # That sign-in is spent: the real callback cannot use it any more.
    again = client.get(callback)
    assert again.status_code == 403 and "start again" in again.text

    issuer.user = {"sub": "u-3003", "email": "guest@example.org", "groups": ["visitors"]}
    fresh = console.browser()
    refused = fresh.get(to_provider(fresh))
    assert refused.status_code == 403 and "no console role" in refused.text
    assert fresh.get("/admin/traffic").status_code == 303


def test_sign_in_through_the_provider_on_postgres(
    upstream: UpstreamSimulator, issuer: LocalIssuer, tmp_path: Path
) -> None:
    oidc = {"issuer": issuer.url, "client_id": CLIENT, "admin_groups": ["staff"]}
    with throwaway_postgres() as url, console_gateway(tmp_path, upstream.url, store_url=url, oidc=oidc) as console:
        client = console.browser()
        callback = to_provider(client)
        assert client.get(callback).status_code == 303
        assert "dana@example.org (admin)" in client.get("/admin/traffic").text
        assert console.browser().get(callback).status_code == 403  # used once, on any replica
