"""`egress keys create|rotate|list` with scopes and lifetimes, through the real CLI on a SQLite store:
bad durations and unknown APIs are usage errors that say what is accepted; rotation carries the
scope over and shortens the old key; nothing prints a key but `create` and `rotate`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from click.testing import CliRunner

from egress.cli.main import main
from egress.config import default_cache_dir
from egress.core.key_scope import KeyScope
from egress.store.sqlite import SqliteStore


def cli(tmp_path: Path, *args: str):
    env = {
        "HOME": str(tmp_path),
        "EGRESS_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    return CliRunner().invoke(main, list(args), env=env)


def stored(tmp_path: Path):
    store = SqliteStore(tmp_path / "data" / "egress.db")
    try:
        return {k.key_id: k for k in store.list_keys()}
    finally:
        store.close()


def test_create_with_scope_lifetime_and_service_account(tmp_path: Path) -> None:
    made = cli(tmp_path, "keys", "create", "--user", "ada", "--team", "platform", "--expires", "30d",
               "--apis", "messages,openai.responses", "--models", "claude-*", "--service-account", "ci-build")  # fmt: skip
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("egk_")
    [key] = stored(tmp_path).values()
    assert key.service_account == "ci-build" and key.user == "ada" and key.team == "platform"
    assert key.scope == KeyScope(apis=("messages", "openai.responses"), models=("claude-*",))
    assert key.expires_at is not None and abs(key.expires_at - (time.time() + 30 * 86_400)) < 60
    listed = cli(tmp_path, "keys", "list", "--json")
    [row] = json.loads(listed.stdout)
    assert row["scope"] == "apis=messages,openai.responses models=claude-*"
    assert row["service_account"] == "ci-build" and row["last_used"] == "never" and row["state"] == "active"
    assert secret not in listed.stdout


def test_bad_duration_and_unknown_api_are_usage_errors(tmp_path: Path) -> None:
    bad = cli(tmp_path, "keys", "create", "--user", "ada", "--expires", "30 days")
    assert bad.exit_code == 2 and "is not a duration" in bad.output and "30d" in bad.output
    unknown = cli(tmp_path, "keys", "create", "--user", "ada", "--apis", "mesages")
    assert unknown.exit_code == 2 and "unknown API 'mesages'" in unknown.output and "messages" in unknown.output
    csv = tmp_path / "people.csv"
    csv.write_text("user,team\nada,core\n")
    mixed = cli(tmp_path, "keys", "create", "--from-csv", str(csv), "--expires", "1d")
    assert mixed.exit_code == 2 and "go with --user" in mixed.output
    assert not (tmp_path / "data" / "egress.db").exists() or stored(tmp_path) == {}


def test_rotate_carries_the_scope_and_bounds_the_old_key(tmp_path: Path) -> None:
    cli(tmp_path, "keys", "create", "--user", "ada", "--models", "gpt-*", "--expires", "10d")
    [old] = stored(tmp_path).values()
    rotated = cli(tmp_path, "keys", "rotate", old.key_id, "--overlap", "15m")
    assert rotated.exit_code == 0, rotated.output
    keys = stored(tmp_path)
    new = next(k for k in keys.values() if k.key_id != old.key_id)
    assert new.rotated_from == old.key_id and new.scope == old.scope and new.user == "ada"
    assert abs(keys[old.key_id].expires_at - (time.time() + 900)) < 60
    assert abs(new.expires_at - (time.time() + 10 * 86_400)) < 60  # the same lifetime, from now
    assert rotated.stdout.strip().startswith("egk_")
    again = cli(tmp_path, "keys", "rotate", "key_000000000000")
    assert again.exit_code == 1 and "no active key" in again.output
