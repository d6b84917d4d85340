"""Approval decisions pushed through the real Redis: a request held on one replica learns of a
decision taken on another at once, not at its next poll; without Redis, polling still answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.approve import Approval, Approvals
from egress.approve.desk import ApprovalDesk
from egress.shared.approvals import ApprovalBroadcast
from egress.shared.client import HotState
from egress.store.base import SqlStore
from egress.store.sqlite import SqliteStore
from tests.support.databases import migrated_store
from tests.support.gateway import free_port
from tests.unit.shared.conftest import settings


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


async def test_a_decision_on_another_replica_wakes_the_held_request_at_once(
    store: SqlStore, tmp_path: Path, prefix: str, raw
):
    other_store = SqliteStore(tmp_path / "egress.db")  # replica B's own connections
    a_hot, b_hot = HotState(settings(prefix)), HotState(settings(prefix))
    # Polling would take an hour: only the pushed decision can answer within the guard below.
    a_desk = ApprovalDesk(Approvals(store), poll_interval_s=3600)
    b_desk = ApprovalDesk(Approvals(other_store), poll_interval_s=3600)
    a_cast, b_cast = ApprovalBroadcast(a_hot, a_desk), ApprovalBroadcast(b_hot, b_desk)
    try:
        await a_cast.start()
        await b_cast.start()
        approval = pending(a_desk.approvals)
        held = asyncio.ensure_future(a_desk.wait(approval.approval_id, 3600))
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await asyncio.to_thread(b_desk.approvals.approve, approval.approval_id, "bob")  # B's console
        decided = await asyncio.wait_for(held, 10)
        assert decided is not None and (decided.status, decided.decided_by) == ("approved", "bob")
        assert time.monotonic() - start < 10
    finally:
        for cast, hot, desk in ((a_cast, a_hot, a_desk), (b_cast, b_hot, b_desk)):
            await cast.close()
            await hot.close()
            desk.close()
        other_store.close()


async def test_without_redis_a_held_request_still_learns_by_polling(store: SqlStore, tmp_path: Path, prefix: str):
    other_store = SqliteStore(tmp_path / "egress.db")
    hot = HotState(settings(prefix, url=f"redis://127.0.0.1:{free_port()}/0", timeout_ms=100, connect_timeout_ms=100))
    desk = ApprovalDesk(Approvals(store), poll_interval_s=0.05)
    cast = ApprovalBroadcast(hot, desk)
    try:
        await cast.start()
        approval = pending(desk.approvals)
        held = asyncio.ensure_future(desk.wait(approval.approval_id, 3600))
        await asyncio.to_thread(Approvals(other_store).deny, approval.approval_id, "carol")
        decided = await asyncio.wait_for(held, 10)
        assert decided is not None and decided.status == "denied"
    finally:
        await cast.close()
        await hot.close()
        desk.close()
        other_store.close()
