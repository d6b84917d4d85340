"""Console accounts, sessions and OIDC sign-ins in progress on the real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.admin.accounts import Passwords, Role, Viewer, new_account
from egress.admin.sessions import SessionBook, token_hash
from egress.core.records import ConsoleLogin
from egress.store.base import SqlStore
from tests.support.clock import ManualClock
from tests.support.databases import migrated_store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_store(request.param, tmp_path) as s:
        yield s


def test_accounts_create_list_remove(store: SqlStore) -> None:
    passwords = Passwords()
    lin = new_account(passwords, "lin", Role.TEAM_LEAD, "payments", "a long enough password")
    assert store.console_user_create(lin)
    assert not store.console_user_create(new_account(passwords, "lin", Role.ADMIN, None, "another long password"))
    assert store.console_user("lin") == lin  # the first one is kept as it was
    assert [u.name for u in store.console_users()] == ["lin"]
    assert store.console_user("nobody") is None
    assert store.console_user_remove("lin") and not store.console_user_remove("lin")


def test_sessions_expire_end_and_end_with_their_account(store: SqlStore) -> None:
    clock = ManualClock()
    book = SessionBook(store, ttl_s=60, clock=clock)
    viewer = Viewer("lin", Role.TEAM_LEAD, "payments")
    token, session = book.start(viewer)
    assert store.console_session(session.token_hash) == session
    assert token_hash(token) == session.token_hash and token not in session.token_hash
    assert book.find(token) == session and book.find("") is None and book.find(token + "x") is None
    clock.now += 61
    assert book.find(token) is None and store.console_session(session.token_hash) is None  # expired: removed

    token, _ = book.start(viewer)
    book.end(token)
    assert book.find(token) is None
    token, _ = book.start(viewer)
    store.console_user_remove("lin")
    assert book.find(token) is None  # removing the account ended its sessions


def test_an_oidc_sign_in_is_taken_once(store: SqlStore) -> None:
    login = ConsoleLogin("h" * 64, "state", "nonce", "verifier", "/admin/traffic", 2_000.0)
    store.console_login_put(login, now=1_000.0)
    assert store.console_login_take("h" * 64) == login
    assert store.console_login_take("h" * 64) is None
    store.console_login_put(login, now=1_000.0)
    store.console_login_put(ConsoleLogin("g" * 64, "s", "n", "v", "/admin/flow", 9_000.0), now=2_000.0)
    assert store.console_login_take("h" * 64) is None  # expired ones are dropped when a new one comes
