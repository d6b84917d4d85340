"""The console at /admin over real HTTP, against the real gateway (ThreadedGateway) with traffic
from the official Anthropic SDK: sign-in, sessions, CSRF, security headers, what each role may
see and decide, and that planted canary secrets never appear on any console page."""

from __future__ import annotations

import html
import re
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from egress.admin.sessions import COOKIE
from tests.support.console import (
    APPROVAL_ID,
    PASSWORD,
    ConsoleGateway,
    Held,
    altered,
    canary,
    console_gateway,
    csrf_of,
    login,
)
from tests.support.databases import throwaway_postgres
from tests.support.simulator import UpstreamSimulator
from tests.support.tls import make_test_ca


@pytest.fixture
def console(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[ConsoleGateway]:
    with console_gateway(tmp_path, upstream.url, login_max_failures=3, login_window_s=60) as running:
        yield running


def pending_approval(admin: httpx.Client, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        page = admin.get("/admin/approvals/rows")
        pending = page.text.split('id="decided"')[0]
        found = APPROVAL_ID.search(pending)
        if found:
            return found.group(1)
        time.sleep(0.1)
    raise AssertionError("no pending approval appeared")


# --- sign-in and sessions ------------------------------------------------------------------------


def test_sign_in_and_out(console: ConsoleGateway) -> None:
    client = console.browser()
    first = client.get("/admin/traffic")
    assert first.status_code == 303 and first.headers["location"].startswith("/admin/login?next=/admin/traffic")

    signed = login(client, "root", PASSWORD)
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/traffic"
    cookie = signed.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # plain HTTP here; over TLS the cookie is Secure
    page = client.get("/admin/traffic")
    assert page.status_code == 200 and "root (admin)" in page.text
    token = client.cookies[COOKIE]

    out = client.post("/admin/logout", data={"csrf": csrf_of(client)})
    assert out.status_code == 303 and out.headers["location"] == "/admin/login"
    assert client.get("/admin/traffic").status_code == 303
    # The session ended on the server: the old cookie does not work any more.
    replayed = console.browser()
    replayed.cookies.set(COOKIE, token, path="/admin")
    assert replayed.get("/admin/traffic").status_code == 303


def test_wrong_password_then_throttled(console: ConsoleGateway) -> None:
    client = console.browser()
    wrong = login(client, "root", "not the password")
    assert wrong.status_code == 401 and "wrong account name or password" in wrong.text
    unknown = login(client, "nobody", PASSWORD)
    assert unknown.status_code == 401 and COOKIE not in unknown.headers.get("set-cookie", "")
    login(client, "root", "still not it")
    # Three failures (login_max_failures) from this address: even the right password waits.
    throttled = login(client, "root", PASSWORD)
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in throttled.text
    assert client.get("/admin/traffic").status_code == 303


def test_session_expires(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    with console_gateway(tmp_path, upstream.url, session_ttl_s=1) as console:
        client = console.sign_in("root")
        assert client.get("/admin/traffic").status_code == 200
        time.sleep(1.2)
        expired = client.get("/admin/traffic")
        assert expired.status_code == 303 and expired.headers["location"].startswith("/admin/login")


def test_csrf_and_origin_are_checked(console: ConsoleGateway) -> None:
    client = console.sign_in("root")
    token = csrf_of(client)
    assert client.post("/admin/logout", data={}).status_code == 403
    assert client.post("/admin/logout", data={"csrf": altered(token)}).status_code == 403
    foreign = client.post("/admin/logout", data={"csrf": token}, headers={"origin": "https://evil.example"})
    assert foreign.status_code == 403 and "Origin" in foreign.text
    bare = httpx.post(f"{console.url}/admin/logout", data={"csrf": token}, cookies={COOKIE: client.cookies[COOKIE]})
    assert bare.status_code == 403  # neither Origin nor Referer
    referer = client.post(
        "/admin/logout", data={"csrf": token}, headers={"origin": "", "referer": f"{console.url}/admin/traffic"}
    )
    assert referer.status_code == 303  # a same-origin Referer stands in for a missing Origin
    # Still signed in after the refused ones? No: the last one signed out.
    assert client.get("/admin/traffic").status_code == 303

    # The sign-in form has its own token (a cookie and a form field that must agree).
    fresh = console.browser()
    fresh.get("/admin/login")
    no_token = fresh.post("/admin/login", data={"username": "root", "password": PASSWORD})
    assert no_token.status_code == 403 and COOKIE not in fresh.cookies


def test_security_headers(console: ConsoleGateway) -> None:
    client = console.sign_in("root")
    console.ask("dave", "hello")
    console.records(1)
    for path in ("/admin/login", "/admin/traffic", "/admin/traffic/rows", "/admin/audit", "/admin/static/htmx.min.js"):
        response = client.get(path)
        assert response.status_code == 200, path
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["x-frame-options"] == "DENY" and response.headers["x-content-type-options"] == "nosniff"
        if path.endswith(".js"):
            continue
        # No inline script or style for the CSP to refuse: scripts are files, no style attributes.
        assert not re.search(r"<script(?![^>]*\bsrc=)", response.text), path
        assert " style=" not in response.text and "<style" not in response.text, path
    assert client.get("/admin/nonexistent").headers["x-frame-options"] == "DENY"


# --- what each role sees -------------------------------------------------------------------------


def test_team_lead_sees_only_their_team(console: ConsoleGateway) -> None:
    console.ask("alice", "platform question")
    console.ask("dave", "payments question")
    rows = console.records(2)
    by_team = {r.entry.team: r.entry.request_id for r in rows if r.entry.api}
    platform, payments = by_team["platform"], by_team["payments"]

    lead = console.sign_in("lead-payments")
    for path in ("/admin/traffic", "/admin/traffic/rows", "/admin/audit", "/admin/audit?team=platform", "/admin/flow"):
        page = lead.get(path)
        assert page.status_code == 200, path
        assert platform not in page.text and "alice" not in page.text, path
    assert payments in lead.get("/admin/traffic").text
    assert payments in lead.get("/admin/audit?team=platform").text  # the team filter cannot widen the scope
    assert "dave" in lead.get("/admin/flow").text
    # Asked for directly, another team's record and replay do not exist.
    assert lead.get(f"/admin/audit/{platform}").status_code == 404
    assert lead.get(f"/admin/replay/{platform}").status_code == 404
    assert lead.get(f"/admin/audit/{payments}").status_code == 200
    assert lead.get(f"/admin/replay/{payments}").status_code == 200

    admin = console.sign_in("root")
    for rid in (platform, payments):
        assert rid in admin.get("/admin/traffic").text
        assert admin.get(f"/admin/replay/{rid}").status_code == 200
    flow = admin.get("/admin/flow").text
    assert "alice" in flow and "dave" in flow and "<svg" in flow


def test_team_lead_decides_only_their_teams_approvals(console: ConsoleGateway) -> None:
    admin = console.sign_in("root")
    secret = canary()
    held = Held(console, "alice", f"deploy with STRIPE_KEY={secret}")
    approval = pending_approval(admin)

    other = console.sign_in("lead-payments")
    assert approval not in other.get("/admin/approvals").text
    assert other.get(f"/admin/approvals/{approval}").status_code == 404
    refused = other.post(f"/admin/approvals/{approval}/decide", data={"csrf": csrf_of(other), "decision": "approve"})
    assert refused.status_code == 404
    assert not held.done and "pending" in admin.get(f"/admin/approvals/{approval}").text

    lead = console.sign_in("lead-platform")
    assert approval in lead.get("/admin/approvals").text
    decided = lead.post(
        f"/admin/approvals/{approval}/decide", data={"csrf": csrf_of(lead), "decision": "approve", "note": "ok"}
    )
    assert decided.status_code == 303
    held.wait()
    assert held.text  # the held stream completed with the model's answer
    detail = admin.get(f"/admin/approvals/{approval}").text
    assert "lead-platform" in detail and secret not in detail
    # Deciding twice is refused with the reason.
    again = lead.post(f"/admin/approvals/{approval}/decide", data={"csrf": csrf_of(lead), "decision": "deny"})
    assert again.status_code == 409


def test_admin_only_pages(console: ConsoleGateway) -> None:
    lead = console.sign_in("lead-platform")
    assert lead.get("/admin/policy").status_code == 403
    assert 'href="/admin/policy"' not in lead.get("/admin/traffic").text
    admin = console.sign_in("root")
    policy = admin.get("/admin/policy")
    assert policy.status_code == 200
    assert "rego:" in policy.text and "record_payload" in policy.text and "package egress" in policy.text
    providers = admin.get("/admin/providers")
    assert providers.status_code == 200 and "sim-anthropic" in providers.text and "policy fit" in providers.text


def test_audit_search_filters_and_pages(console: ConsoleGateway) -> None:
    for i in range(3):
        console.ask("dave", f"question {i} with STRIPE_KEY={canary()}")
    console.ask("alice", "no secret here")
    rows = console.records(4)
    admin = console.sign_in("root")
    secret_rows = admin.get("/admin/audit?kind=secret").text
    assert secret_rows.count('data-request="') == 3
    assert admin.get("/admin/audit?user=alice").text.count('data-request="') == 1
    assert admin.get("/admin/audit?decision=mask&team=payments").text.count('data-request="') == 3
    bad = admin.get("/admin/audit?since=yesterday")
    assert bad.status_code == 400 and "not a date" in bad.text
    record = admin.get(f"/admin/audit/{rows[-1].entry.request_id}")
    assert record.status_code == 200 and f'"request_id": "{rows[-1].entry.request_id}"' in html.unescape(record.text)
    # Its write-ahead egress record (committed before the bytes left) is listed on its page, once,
    # with the endpoint; in search and live traffic each request is one row, never two.
    egress_table = record.text.split('<table id="egress">', 1)[1].split("</table>", 1)[0]
    assert egress_table.count("<tr><td>") == 1 and f"<td>{rows[-1].entry.endpoint}</td>" in egress_table
    assert admin.get("/admin/audit").text.count('data-request="') == 4
    assert admin.get("/admin/traffic/rows").text.count('data-request="') == 4


def test_canaries_never_appear_in_the_console(console: ConsoleGateway) -> None:
    planted = [canary() for _ in range(3)]
    for value in planted[:2]:
        console.ask("dave", f"here is the key {value}, keep it safe")
    admin = console.sign_in("root")
    held = Held(console, "alice", f"and this one {planted[2]}")
    approval = pending_approval(admin)
    admin.post(f"/admin/approvals/{approval}/decide", data={"csrf": csrf_of(admin), "decision": "approve"})
    held.wait()
    rows = console.records(3)
    paths = ["/admin/traffic", "/admin/traffic/rows", "/admin/approvals", "/admin/approvals/rows"]
    paths += [f"/admin/approvals/{approval}", "/admin/audit", "/admin/audit?kind=secret", "/admin/flow"]
    paths += ["/admin/providers", "/admin/policy"]
    for stored in rows:
        paths += [f"/admin/audit/{stored.entry.request_id}", f"/admin/replay/{stored.entry.request_id}"]
    replays = 0
    for path in paths:
        page = admin.get(path)
        assert page.status_code in (200, 404), path
        for value in planted:
            assert value not in page.text, f"a canary appeared on {path}"
        if path.startswith("/admin/replay/") and page.status_code == 200:
            replays += 1
            assert "EGX_" in page.text  # the masked body, with placeholders where the secrets were
    assert replays >= 3


def test_console_on_postgres(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    with throwaway_postgres() as url, console_gateway(tmp_path, upstream.url, store_url=url) as console:
        console.ask("dave", "payments on postgres")
        console.ask("alice", "platform on postgres")
        rows = console.records(2)
        lead = console.sign_in("lead-payments")
        page = lead.get("/admin/audit").text
        assert page.count('data-request="') == 1 and "dave" in page
        platform = next(r.entry.request_id for r in rows if r.entry.team == "platform")
        assert lead.get(f"/admin/replay/{platform}").status_code == 404
        assert lead.post("/admin/logout", data={"csrf": csrf_of(lead)}).status_code == 303
        assert lead.get("/admin/traffic").status_code == 303


def test_replay_after_retention_says_expired(console: ConsoleGateway) -> None:
    console.ask("dave", f"a key {canary()} for the record")
    (stored,) = [r for r in console.records(1) if r.entry.api]
    admin = console.sign_in("root")
    before = admin.get(f"/admin/replay/{stored.entry.request_id}")
    assert before.status_code == 200 and 'id="sent"' in before.text and "Expired" not in before.text
    assert console.store.purge_recordings(now=time.time() + 10 * 365 * 86400) == 1
    after = admin.get(f"/admin/replay/{stored.entry.request_id}")
    assert after.status_code == 200 and 'id="expired"' in after.text and 'id="sent"' not in after.text
    assert 'id="digests">expired' in after.text
    assert admin.get(f"/admin/audit/{stored.entry.request_id}").status_code == 200  # the record stays


def test_console_can_be_turned_off(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    with console_gateway(tmp_path, upstream.url, enabled=False) as console:
        off = httpx.get(f"{console.url}/admin/login")
        assert off.status_code == 404 and "no such endpoint: GET /admin/login" in off.json()["error"]["message"]
        assert console.ask("dave", "still answering")  # the API itself is unchanged


def test_over_tls_the_session_cookie_is_secure(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    ca = make_test_ca(tmp_path / "ca")
    server = {"tls_cert_file": str(ca.server_cert), "tls_key_file": str(ca.server_key)}
    with console_gateway(tmp_path, upstream.url, server=server) as console:
        assert console.url.startswith("https://")
        client = console.browser(verify=ssl.create_default_context(cafile=str(ca.ca_cert)))
        signed = login(client, "root", PASSWORD)
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=") and "Secure" in cookie and "HttpOnly" in cookie
        page = client.get("/admin/traffic")
        assert page.status_code == 200 and "strict-transport-security" in page.headers
