"""The gateway's wait for a decision: woken at once by a decision taken in this process, and by
re-reading the shared store for one taken elsewhere (another Approvals on the same database, as
the CLI or another replica has)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.approve import Approval, Approvals
from egress.approve.desk import ApprovalDesk
from egress.store.base import SqlStore
from egress.store.sqlite import SqliteStore
from tests.support.databases import migrated_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_store("sqlite", tmp_path) as s:
        yield s


def pending(approvals: Approvals) -> Approval:
    return approvals.create(
        user="alice",
        team=None,
        request_id="egr_1",
        api="openai.responses",
        model="gpt-4o",
        endpoints=("sim-openai",),
        reasons=(),
        kinds={"secret": 1},
        rules={"private-key-pem": 1},
        digest="d" * 64,
        ttl_s=300,
    )


async def test_a_decision_in_this_process_wakes_the_waiter(store: SqlStore) -> None:
    approvals = Approvals(store)
    # Polling would take an hour: only the in-process wake-up can answer within the guard below.
    desk = ApprovalDesk(approvals, poll_interval_s=3600)
    a = pending(approvals)
    waiting = asyncio.ensure_future(desk.wait(a.approval_id, 3600))
    await asyncio.sleep(0)
    await asyncio.to_thread(approvals.approve, a.approval_id, "bob")
    decided = await asyncio.wait_for(waiting, 30)
    assert decided is not None and decided.status == "approved"
    desk.close()


async def test_a_decision_elsewhere_is_read_from_the_store(store: SqlStore, tmp_path: Path) -> None:
    desk = ApprovalDesk(Approvals(store), poll_interval_s=0.05)
    a = pending(desk.approvals)
    elsewhere = SqliteStore(tmp_path / "egress.db")  # its own connections, like another process
    threading.Thread(target=Approvals(elsewhere).deny, args=(a.approval_id, "carol")).start()
    decided = await asyncio.wait_for(desk.wait(a.approval_id, 3600), 30)
    assert decided is not None and (decided.status, decided.decided_by) == ("denied", "carol")
    elsewhere.close()
    desk.close()


async def test_still_pending_after_the_timeout_is_none_and_expire_ends_it(store: SqlStore) -> None:
    desk = ApprovalDesk(Approvals(store), poll_interval_s=0.01)
    a = pending(desk.approvals)
    assert await desk.wait(a.approval_id, 0.05) is None
    assert (await desk.expire(a.approval_id)).status == "expired"
    cancelled = desk.cancel_soon(a.approval_id)
    assert cancelled is not None
    cancelled.result(30)
    assert (await desk.get(a.approval_id)).status == "expired"  # an expired one stays expired
    desk.close()
    assert desk.cancel_soon(a.approval_id) is None  # after shutdown: logged, left to expire


async def test_the_sweep_expires_an_unanswered_approval_past_its_deadline(store: SqlStore) -> None:
    now = [1_000_000.0]
    approvals = Approvals(store, clock=lambda: now[0])
    desk = ApprovalDesk(approvals, poll_interval_s=3600)
    a = pending(approvals)  # ttl 300 s
    desk.start_sweep(interval_s=0.02)
    try:
        await asyncio.sleep(0.1)
        current = approvals.get(a.approval_id)
        assert current is not None and current.status == "pending"  # not yet due
        now[0] += 301
        for _ in range(250):
            current = approvals.get(a.approval_id)
            if current is not None and current.status == "expired":
                break
            await asyncio.sleep(0.02)
        assert current is not None and current.status == "expired"
    finally:
        desk.close()


async def test_a_failing_sweep_is_reported_once_and_recovers(store: SqlStore, tmp_path: Path, caplog) -> None:
    """The sweep survives store errors: /readyz's approval_sweep check names the error class, the
    outage is logged once (not a traceback every interval), and the next good sweep clears it."""
    approvals = Approvals(store)
    desk = ApprovalDesk(approvals, poll_interval_s=3600)
    pending(approvals)
    # A real fault: the table the sweep updates disappears under it (another connection renames it).
    other = sqlite3.connect(next(tmp_path.rglob("*.db")))
    other.execute("ALTER TABLE approvals RENAME TO approvals_away")
    other.commit()
    caplog.set_level("ERROR", logger="egress.approve")
    desk.start_sweep(interval_s=0.02)
    try:
        for _ in range(250):
            if desk.sweep_health.failures >= 3:
                break
            await asyncio.sleep(0.02)
        check = desk.check()
        assert desk.sweep_health.failures >= 3
        assert check.name == "approval_sweep" and check.ok  # reported, never gating
        assert "failing" in check.detail and check.last_error is not None and "OperationalError" in check.last_error
        outage_lines = [r for r in caplog.records if "approval sweep failing" in r.getMessage()]
        assert len(outage_lines) == 1 and not any(r.exc_info for r in caplog.records)
        other.execute("ALTER TABLE approvals_away RENAME TO approvals")
        other.commit()
        for _ in range(250):
            if not desk.sweep_health.failing:
                break
            await asyncio.sleep(0.02)
        assert not desk.sweep_health.failing and desk.check().detail == "running"
    finally:
        other.close()
        desk.close()
