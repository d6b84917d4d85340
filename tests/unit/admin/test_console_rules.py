"""The console's rules that need no server: throttling, roles, redirects after sign-in, search
filters, the data-flow layout."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.admin.accounts import AccountError, Passwords, Role, Viewer, new_account, parse_role
from egress.admin.console import PREFIX, _safe_next
from egress.admin.flowgraph import layout
from egress.admin.oidc import RoleMapping
from egress.admin.records import Flow, QueryError, Search, parse_time
from egress.admin.throttle import LoginThrottle
from egress.identity.oidc import VerifiedToken
from tests.support.clock import ManualClock


def test_throttle_counts_failures_in_the_window_per_key() -> None:
    clock = ManualClock(1000.0)
    throttle = LoginThrottle(max_failures=3, window_s=60, clock=clock)
    keys = ("user:root", "addr:10.0.0.1")
    for _ in range(3):
        assert throttle.retry_after(keys) is None
        throttle.failed(keys)
        clock.now += 10
    # Three failures within 60 s: blocked until the first one leaves the window (at 1060).
    assert throttle.retry_after(keys) == pytest.approx(30)
    assert throttle.retry_after(("user:other", "addr:10.0.0.1")) == pytest.approx(30)  # the same address
    assert throttle.retry_after(("user:other", "addr:10.0.0.2")) is None
    clock.now = 1060.5
    assert throttle.retry_after(keys) is None
    throttle.failed(keys)
    throttle.succeeded(keys[:1])
    assert throttle.retry_after(keys[:1]) is None


def test_roles_and_what_they_see() -> None:
    assert parse_role("team-lead") is Role.TEAM_LEAD and parse_role("admin") is Role.ADMIN
    with pytest.raises(AccountError, match="unknown role"):
        parse_role("owner")
    admin = Viewer("root", Role.ADMIN, None)
    lead = Viewer("lin", Role.TEAM_LEAD, "payments")
    assert admin.scope is None and admin.sees("payments") and admin.sees(None)
    assert lead.scope == "payments" and lead.sees("payments")
    assert not lead.sees("platform") and not lead.sees(None)


def test_accounts_are_checked_and_only_hashes_kept() -> None:
    passwords = Passwords()
    user = new_account(passwords, "lin", Role.TEAM_LEAD, "payments", "a long enough password")
    assert "a long enough password" not in user.password_hash and user.password_hash.startswith("$argon2id$")
    assert passwords.check(user.password_hash, "a long enough password")
    assert not passwords.check(user.password_hash, "a long enough passwore")
    assert not passwords.check(None, "a long enough password")  # no such account
    assert not passwords.check("not a hash", "a long enough password")
    with pytest.raises(AccountError, match="needs --team"):
        new_account(passwords, "lin", Role.TEAM_LEAD, None, "a long enough password")
    with pytest.raises(AccountError, match="leave out --team"):
        new_account(passwords, "ada", Role.ADMIN, "payments", "a long enough password")
    with pytest.raises(AccountError, match="at least 12"):
        new_account(passwords, "ada", Role.ADMIN, None, "short")
    with pytest.raises(AccountError, match="invalid account name"):
        new_account(passwords, "ada lovelace", Role.ADMIN, None, "a long enough password")


@given(st.text())
def test_the_page_after_sign_in_is_always_inside_the_console(target: str) -> None:
    chosen = _safe_next(target)
    assert chosen.startswith(PREFIX + "/") and not chosen.startswith("//") and "\\" not in chosen
    assert chosen == target or chosen == f"{PREFIX}/traffic"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin/", "/admin\\..\\x", "/adminx", ""])
def test_no_open_redirect(target: str) -> None:
    assert _safe_next(target) == f"{PREFIX}/traffic"


def test_search_filters_are_limited_to_the_team_lead_team() -> None:
    search = Search.of({"team": "platform", "kind": "secret", "since": "2026-01-31", "until": "2026-02-01T12:00+01:00"})
    lead = search.selector(Viewer("lin", Role.TEAM_LEAD, "payments"))
    assert lead.team == "payments" and lead.kind == "secret"
    assert lead.since == 1769817600.0 and lead.until == 1769943600.0
    assert search.selector(Viewer("root", Role.ADMIN, None)).team == "platform"
    with pytest.raises(QueryError, match="until: 'tomorrow'"):
        parse_time("tomorrow", "until")
    assert parse_time("  ", "from") is None


def token(claims: dict[str, object], team: str | None) -> VerifiedToken:
    return VerifiedToken(user="dana@example.org", team=team, subject="u-1", token_id=None, expires_at=0, claims=claims)


def test_identity_provider_claims_map_to_roles() -> None:
    roles = RoleMapping(groups_claim="groups", admin_groups=("sec-admins",))
    assert roles.viewer(token({"groups": ["dev", "sec-admins"]}, "dev")) == Viewer("dana@example.org", Role.ADMIN, None)
    assert roles.viewer(token({"groups": "sec-admins"}, None)) == Viewer("dana@example.org", Role.ADMIN, None)
    assert roles.viewer(token({"groups": ["dev"]}, "payments")) == Viewer(
        "dana@example.org", Role.TEAM_LEAD, "payments"
    )
    assert roles.viewer(token({"groups": ["dev"]}, None)) is None
    assert RoleMapping().viewer(token({"groups": ["sec-admins"]}, None)) is None  # no admin group configured


def test_flow_layout_links_every_sender_endpoint_and_jurisdiction() -> None:
    flow = Flow(
        requests={
            ("payments", "dave", "eu", "FR"): 3,
            ("platform", "alice", "eu", "FR"): 1,
            ("payments", "dave", "us", "US"): 2,
        },
        classes={},
    )
    graph = layout(flow)
    labels = {n.label: n.count for n in graph.nodes}
    assert labels == {"payments / dave": 5, "platform / alice": 1, "eu": 4, "us": 2, "FR": 4, "US": 2}
    assert sorted(link.count for link in graph.links) == [1, 2, 2, 3, 4]
    assert max(link.width for link in graph.links) == pytest.approx(11.5)
