"""`store.sqlite_synchronous`: FULL (fsync at every commit) unless the operator chooses NORMAL;
the choice reaches every connection the store opens, on every thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydantic import ValidationError

from egress.config import load_config
from egress.store.open import open_store
from egress.store.settings import SqliteSync, StoreSettings
from egress.store.sqlite import SqliteStore

FULL, NORMAL = 2, 1  # PRAGMA synchronous's answers


def pragma(store: SqliteStore) -> int:
    with store._connection() as conn:  # noqa: SLF001 - the connection the store writes with
        return int(conn.cursor().execute("PRAGMA synchronous").fetchone()[0])


def test_the_default_is_full(tmp_path: Path) -> None:
    assert StoreSettings().sqlite_synchronous == SqliteSync.FULL
    store = open_store(f"sqlite:///{tmp_path / 'egress.db'}")
    assert isinstance(store, SqliteStore)
    try:
        assert pragma(store) == FULL
    finally:
        store.close()


def test_normal_is_set_on_every_connection(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'egress.db'}", StoreSettings(sqlite_synchronous="normal"))
    assert isinstance(store, SqliteStore)
    seen: list[int] = []
    try:
        seen.append(pragma(store))
        other = threading.Thread(target=lambda: seen.append(pragma(store)))  # its own connection
        other.start()
        other.join()
        assert seen == [NORMAL, NORMAL]
    finally:
        store.close()


def test_the_config_file_sets_it_and_refuses_other_values(tmp_path: Path) -> None:
    config_file = tmp_path / "egress.yaml"
    config_file.write_text(f"data_dir: {tmp_path}\nstore:\n  sqlite_synchronous: normal\n")
    assert load_config(config_file, env={}).store.sqlite_synchronous == SqliteSync.NORMAL
    with pytest.raises(ValidationError):
        StoreSettings(sqlite_synchronous="off")  # no fsync at all is not offered
