"""Usage rows (migration 0012) written in batches, on SQLite and PostgreSQL, and what
`egress usage` shows of them against the limits."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from egress.cli.entry import main
from egress.core.exchange import Principal
from egress.limits.report import parse_since
from egress.limits.usage_log import UsageLog
from egress.store.open import open_store
from tests.support.databases import migrated_store
from tests.unit.limits.test_settings import write

ALICE = Principal(user="alice", team="qa", key_id="key_a", method="gateway_key")
BOB = Principal(user="bob", team="qa", key_id=None, method="gateway_key")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
async def test_batches_add_up_per_minute_and_day(tmp_path: Path, kind: str) -> None:
    with migrated_store(kind, tmp_path) as store:
        log = UsageLog(store, 3600)
        now = time.time()
        log.note(ALICE, "m-1", now, 100, 10, 1500)
        log.note(ALICE, "m-1", now, 50, 5, 500)
        log.note(BOB, "m-1", now, 7, 1, 0)
        await log.flush()
        log.note(ALICE, "m-1", now, 1, 1, 1)  # a second batch adds to the same rows
        await log.flush()
        await log.flush()  # nothing noted: nothing written
        days = store.usage_rows("usage_day", now - 86_400)
        minutes = store.usage_rows("usage_minute", now - 3600, team="qa", user="alice")
    alice = next(r for r in days if r.user == "alice")
    assert (alice.requests, alice.input_tokens, alice.output_tokens, alice.spend_micro) == (3, 151, 16, 2001)
    assert alice.key_id == "key_a" and alice.period % 86_400 == 0
    assert next(r for r in days if r.user == "bob").key_id == ""
    assert len(minutes) == 1 and minutes[0].requests == 3 and minutes[0].period % 60 == 0


async def test_a_failed_write_is_kept_for_the_next(tmp_path: Path) -> None:
    with migrated_store("sqlite", tmp_path) as store:
        broken = UsageLog(_Refusing(), 3600)  # type: ignore[arg-type]
        broken.note(ALICE, "m-1", time.time(), 10, 1, 0)
        await broken.flush()
        assert broken.health.failing_since is not None
        broken._store = store  # the store is back
        broken.note(ALICE, "m-1", time.time(), 10, 1, 0)
        await broken.flush()
        (row,) = store.usage_rows("usage_day", time.time() - 86_400)
    assert row.requests == 2 and row.input_tokens == 20


class _Refusing:
    def usage_add(self, minutes: object, days: object) -> None:
        raise OSError("the store is down")


def test_since_accepts_durations_and_dates() -> None:
    assert parse_since("7d", 1_000_000.0) == 1_000_000.0 - 7 * 86_400
    assert parse_since("2025-12-01", 0) == 1_764_547_200.0
    with pytest.raises(ValueError):
        parse_since("last tuesday", 0)


async def test_egress_usage_against_limits(tmp_path: Path) -> None:
    config = write(
        tmp_path,
        "limits: {teams: {qa: {output_tokens_per_day: 100, spend_per_month_usd: 2}}, default: {requests_per_minute: 60}}",
    )
    store = open_store(f"sqlite:///{tmp_path / 'egress.db'}")
    store.migrate()
    log = UsageLog(store, 3600)
    log.note(ALICE, "m-1", time.time(), 100, 25, 500_000)
    log.note(BOB, "m-1", time.time(), 100, 25, 500_000)
    await log.flush()
    store.close()
    result = CliRunner().invoke(main, ["usage", "--config", str(config), "--team", "qa", "--json"])
    assert result.exit_code == 0, result.output
    lines = {(d["scope"], d["name"]): d for d in orjson.loads(result.output)}
    team = lines[("team", "qa")]
    assert team["requests"] == 2 and team["today_output"] == 50 and team["output_per_day"] == 100
    assert team["month_spend_usd"] == 1.0 and team["spend_per_month_usd"] == 2
    assert lines[("user", "alice")]["output_tokens"] == 25
    plain = CliRunner().invoke(main, ["usage", "--config", str(config), "--format", "plain"])
    assert plain.exit_code == 0 and "50 %" in plain.output
    bad = CliRunner().invoke(main, ["usage", "--config", str(config), "--since", "soon"])
    assert bad.exit_code == 2 and "--since" in bad.output
