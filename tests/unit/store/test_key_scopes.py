"""Scoped, expiring and rotated keys as stored, on SQLite and PostgreSQL (migration 0010)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.core.key_scope import UNSCOPED, KeyScope
from egress.gateway.auth import new_key
from egress.store.base import SqlStore
from egress.store.keys import EXPIRED_KEPT_S
from tests.support.databases import migrated_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_store(request.param, tmp_path) as s:
        yield s


def test_scope_expiry_and_service_account_round_trip(store: SqlStore) -> None:
    scope = KeyScope(apis=("messages",), models=("claude-*",), endpoints=("eu",))
    _, key = new_key("ada", "core", expires_at=time.time() + 60, scope=scope, service_account="ci-build")
    _, plain = new_key("lin", None)
    store.create_keys([key, plain])
    read = {k.key_id: k for k in store.list_keys()}
    assert read[key.key_id] == key
    assert read[plain.key_id].scope is UNSCOPED and read[plain.key_id].expires_at is None
    assert store.get_key(key.key_id) == key
    assert store.get_key("key_nope") is None


def test_recently_expired_keys_stay_in_the_active_list(store: SqlStore) -> None:
    """The gateway answers "expired", not "unknown", so it must still see them, for a week."""
    _, key = new_key("ada", None, expires_at=time.time() - 1)
    _, old = new_key("lin", None, expires_at=time.time() - EXPIRED_KEPT_S - 60)
    store.create_keys([key, old])
    assert [k.key_id for k in store.active_keys()] == [key.key_id]
    assert {k.key_id for k in store.list_keys()} == {key.key_id, old.key_id}  # still listed


def test_rotation_shortens_the_old_key_and_creates_the_successor(store: SqlStore) -> None:
    _, old = new_key("ada", "core", scope=KeyScope(models=("gpt-*",)))
    store.create_key(old)
    _, successor = new_key("ada", "core", scope=old.scope, rotated_from=old.key_id)
    end = time.time() + 3600
    assert store.rotate_key(old.key_id, successor, end)
    read = {k.key_id: k for k in store.list_keys()}
    assert read[old.key_id].expires_at == pytest.approx(end)
    assert read[successor.key_id].rotated_from == old.key_id and read[successor.key_id].scope == old.scope


def test_rotation_never_lengthens_a_key_and_refuses_a_revoked_one(store: SqlStore) -> None:
    soon = time.time() + 10
    _, old = new_key("ada", None, expires_at=soon)
    store.create_key(old)
    _, successor = new_key("ada", None, rotated_from=old.key_id)
    assert store.rotate_key(old.key_id, successor, soon + 3600)
    assert store.get_key(old.key_id).expires_at == pytest.approx(soon)
    _, revoked = new_key("lin", None)
    store.create_key(revoked)
    store.revoke_key(revoked.key_id, time.time())
    _, orphan = new_key("lin", None, rotated_from=revoked.key_id)
    assert not store.rotate_key(revoked.key_id, orphan, time.time() + 60)
    assert store.get_key(orphan.key_id) is None  # nothing half done


def test_last_use_is_batched_and_only_moves_forward(store: SqlStore) -> None:
    _, a = new_key("ada", None)
    _, b = new_key("lin", None)
    store.create_keys([a, b])
    store.touch_keys({a.key_id: 200.0, b.key_id: 100.0})
    store.touch_keys({a.key_id: 150.0})  # an older batch (another gateway's) arriving late
    read = {k.key_id: k for k in store.list_keys()}
    assert read[a.key_id].last_used_at == 200.0 and read[b.key_id].last_used_at == 100.0
    store.touch_keys({})
