"""`egress keys create --from-csv`, as a separate process, on SQLite and on PostgreSQL: the whole
file is checked first (every bad row named with its line, nothing created), then every key is
created in one transaction and written out once, to stdout or to a new 0600 file."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from egress.gateway.auth import hash_key
from egress.store.open import open_store
from tests.support.databases import throwaway_postgres

EGRESS = [sys.executable, "-m", "egress"]

GOOD = """user,team
ada@example.org,payments
lin@example.org,platform
max@example.org,
"""


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*EGRESS, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgres"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dict[str, str], str]]:
    """The environment of an `egress` process and its store URL (a migrated, empty database)."""

    def env_for(url: str) -> dict[str, str]:
        config = tmp_path / "egress.yaml"
        config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "store": {"url": url}}))
        return {**os.environ, "HOME": str(tmp_path), "EGRESS_CONFIG": str(config)}

    if request.param == "sqlite":
        yield env_for(f"sqlite:///{tmp_path / 'data' / 'egress.db'}"), f"sqlite:///{tmp_path / 'data' / 'egress.db'}"
        return
    with throwaway_postgres() as url:
        yield env_for(url), url


def stored_keys(url: str) -> list:
    store = open_store(url)
    try:
        store.migrate()
        return store.list_keys()
    finally:
        store.close()


def test_keys_from_csv_to_stdout_then_usable(setup, tmp_path):
    env, url = setup
    source = tmp_path / "people.csv"
    source.write_text(GOOD)
    made = run(["keys", "create", "--from-csv", str(source)], env)
    assert made.returncode == 0, made.stderr
    assert "created 3 keys" in made.stderr
    rows = list(csv.DictReader(io.StringIO(made.stdout)))
    assert [(r["user"], r["team"]) for r in rows] == [
        ("ada@example.org", "payments"),
        ("lin@example.org", "platform"),
        ("max@example.org", ""),
    ]
    assert list(rows[0]) == ["user", "team", "key_id", "key"]
    stored = {k.key_id: k for k in stored_keys(url)}
    assert len(stored) == 3
    for row in rows:
        key = stored[row["key_id"]]
        assert row["key"].startswith("egk_") and key.key_hash == hash_key(row["key"])  # only the hash is kept
        assert (key.user, key.team or "") == (row["user"], row["team"])
    listed = run(["keys", "list"], env)
    assert listed.returncode == 0 and all(r["key_id"] in listed.stdout for r in rows)
    assert all(r["key"] not in listed.stdout for r in rows)


def test_output_file_is_new_and_private(setup, tmp_path):
    env, url = setup
    source = tmp_path / "people.csv"
    source.write_text(GOOD)
    out = tmp_path / "issued.csv"
    made = run(["keys", "create", "--from-csv", str(source), "--output", str(out)], env)
    assert made.returncode == 0, made.stderr
    assert made.stdout == ""  # the secrets went to the file only
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    rows = list(csv.DictReader(out.open(newline="")))
    assert len(rows) == 3 and {r["key_id"] for r in rows} == {k.key_id for k in stored_keys(url)}
    # An existing file is never overwritten, and then nothing is created.
    again = run(["keys", "create", "--from-csv", str(source), "--output", str(out)], env)
    assert again.returncode == 2 and "never overwritten" in again.stderr
    assert len(stored_keys(url)) == 3
    assert list(csv.DictReader(out.open(newline=""))) == rows


def test_every_bad_row_is_named_and_nothing_is_created(setup, tmp_path):
    env, url = setup
    source = tmp_path / "people.csv"
    source.write_text(
        "user,team\n"
        "ada@example.org,payments\n"  # 2: fine
        ",payments\n"  # 3: no user
        "lin@example.org,platform,extra\n"  # 4: a field too many
        "\n"  # 5: blank lines are allowed
        "ada@example.org,research\n"  # 6: ada again
        "max\x07@example.org,platform\n"  # 7: a control character
    )
    made = run(["keys", "create", "--from-csv", str(source)], env)
    assert made.returncode == 2
    err = made.stderr
    assert f"{source}:3: the user is empty" in err
    assert f"{source}:4: expected 2 fields (user,team), got 3" in err
    assert f"{source}:6: user 'ada@example.org' already has a row (line 2)" in err
    assert f"{source}:7: the user contains a control character" in err
    assert "4 problem(s)" in err and "no key was created" in err
    assert made.stdout == ""
    assert stored_keys(url) == []


def test_duplicate_users_when_allowed(setup, tmp_path):
    env, url = setup
    source = tmp_path / "people.csv"
    source.write_text("team,user\npayments,ada\nresearch,ada\n")  # columns in any order
    made = run(["keys", "create", "--from-csv", str(source), "--allow-duplicate-users"], env)
    assert made.returncode == 0, made.stderr
    assert sorted((k.user, k.team) for k in stored_keys(url)) == [("ada", "payments"), ("ada", "research")]


def test_header_problems(setup, tmp_path):
    env, url = setup
    source = tmp_path / "people.csv"
    source.write_text("name,team,expires\nada,payments,2027-01-01\n")
    made = run(["keys", "create", "--from-csv", str(source)], env)
    assert made.returncode == 2
    assert f"{source}:1: unknown column 'name': a gateway key holds user, team only" in made.stderr
    assert f"{source}:1: unknown column 'expires'" in made.stderr
    assert f"{source}:1: missing column 'user'" in made.stderr
    empty = tmp_path / "empty.csv"
    empty.write_text("user,team\n")
    none = run(["keys", "create", "--from-csv", str(empty)], env)
    assert none.returncode == 2 and "no rows after the header" in none.stderr
    both = run(["keys", "create", "--from-csv", str(source), "--user", "ada"], env)
    assert both.returncode == 2 and "drop --user and --team" in both.stderr
    assert stored_keys(url) == []


def test_single_key_still_needs_a_user(setup):
    env, url = setup
    missing = run(["keys", "create"], env)
    assert missing.returncode == 2 and "--user NAME" in missing.stderr
    one = run(["keys", "create", "--user", "ada", "--team", "payments"], env)
    assert one.returncode == 0 and one.stdout.strip().startswith("egk_")
    assert [(k.user, k.team) for k in stored_keys(url)] == [("ada", "payments")]
