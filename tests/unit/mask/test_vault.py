"""The session vault on the real stores: sealed at rest, bound to its id, gone after its TTL."""

from __future__ import annotations

from pathlib import Path

import pytest

from egress.mask.placeholders import MaskingKeys, load_or_create_master_key
from egress.mask.vault import SessionVault
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore
from tests.support.databases import throwaway_postgres

MAP = {"EGX_AWS_ACCESS_KEY_ID_abcdefghijklm": "AKIAZ3MEXAMPLEQ7XK2F", "EGX_PASSWORD_nopqrstuvwxyza": 'pa"ss\nw\u00f6rd'}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def sqlite_store(tmp_path: Path) -> SqliteStore:
    store = SqliteStore(tmp_path / "egress.db")
    store.migrate()
    return store


def test_round_trip_and_nothing_in_clear_on_disk(tmp_path: Path):
    store = sqlite_store(tmp_path)
    vault = SessionVault(MaskingKeys.derive(b"\x01" * 32).vault, store, ttl_s=60)
    vault.save("resp_abc123", "alice", MAP)
    assert vault.load("resp_abc123", "alice") == MAP
    assert vault.load("resp_other", "alice") is None
    assert vault.load("resp_abc123", "mallory") is None  # bound to the user who created it
    store.close()
    disk = b"".join(p.read_bytes() for p in tmp_path.glob("egress.db*"))
    for needle in [b"AKIAZ3MEXAMPLEQ7XK2F", b"EGX_AWS_ACCESS_KEY_ID", b"resp_abc123", b"pa\\\"ss"]:
        assert needle not in disk


def test_expired_entries_are_absent_and_purged(tmp_path: Path):
    store, clock = sqlite_store(tmp_path), Clock()
    vault = SessionVault(MaskingKeys.derive(b"\x01" * 32).vault, store, ttl_s=60, clock=clock)
    vault.save("resp_1", "alice", MAP)
    clock.now += 59
    assert vault.load("resp_1", "alice") == MAP
    clock.now += 2
    assert vault.load("resp_1", "alice") is None
    assert vault.purge() == 1 and store.vault_get(vault.entry_id("resp_1", "alice")) is None


def test_a_wrong_key_or_a_moved_or_edited_entry_does_not_open(tmp_path: Path):
    store = sqlite_store(tmp_path)
    vault = SessionVault(MaskingKeys.derive(b"\x01" * 32).vault, store, ttl_s=60)
    vault.save("resp_1", "alice", MAP)
    vault.save("resp_2", "alice", {"EGX_X_abcdefghijklm": "other"})
    other_tenant = SessionVault(MaskingKeys.derive(b"\x02" * 32).vault, store, ttl_s=60)
    assert other_tenant.load("resp_1", "alice") is None
    sealed, expires = store.vault_get(vault.entry_id("resp_1", "alice"))
    store.vault_put(vault.entry_id("resp_2", "alice"), sealed, expires)  # moved under another id
    assert vault.load("resp_2", "alice") is None
    flipped = sealed[:-1] + bytes([sealed[-1] ^ 1])
    store.vault_put(vault.entry_id("resp_1", "alice"), flipped, expires)  # edited
    assert vault.load("resp_1", "alice") is None


@pytest.mark.postgres
def test_postgres_store_keeps_the_vault_too():
    with throwaway_postgres() as url:
        store = PostgresStore(url)
        try:
            store.migrate()
            vault = SessionVault(MaskingKeys.derive(b"\x01" * 32).vault, store, ttl_s=60)
            vault.save("resp_pg", "alice", MAP)
            vault.save("resp_pg", "alice", MAP)  # an answer saved twice replaces its entry
            assert vault.load("resp_pg", "alice") == MAP
        finally:
            store.close()


def test_the_master_key_is_created_once_private_and_stable(tmp_path: Path):
    path = tmp_path / "data" / "masking.key"
    first = load_or_create_master_key(path)
    assert load_or_create_master_key(path) == first and len(first) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("not hex")
    with pytest.raises(ValueError, match="64 hex digits"):
        load_or_create_master_key(path)
