"""The approvals service on the real stores (SQLite file and PostgreSQL): decisions, once-only
use, deadlines, races between approvers, and the journal of every step."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.approve import Approval, ApprovalError, Approvals, request_digest
from egress.store.base import SqlStore
from tests.support.databases import migrated_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path: Path) -> Iterator[SqlStore]:
    with migrated_store(request.param, tmp_path) as s:
        yield s


class Steps:
    def __init__(self) -> None:
        self.steps: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()

    def __call__(self, approval: Approval, step: str, actor: str | None) -> None:
        with self._lock:
            self.steps.append((approval.approval_id, step, actor))


def make(approvals: Approvals, digest: str = "d" * 64, user: str = "alice", ttl_s: float = 300.0) -> Approval:
    return approvals.create(
        user=user,
        team="platform",
        request_id="egr_1",
        api="anthropic.messages",
        model="claude-sonnet-4-5",
        endpoints=("sim-anthropic",),
        reasons=("a finding requires approval before the request may leave",),
        kinds={"secret": 1},
        rules={"private-key-pem": 1},
        digest=digest,
        ttl_s=ttl_s,
    )


def test_create_is_pending_and_listed_and_journalled(store: SqlStore) -> None:
    steps = Steps()
    approvals = Approvals(store, steps, clock=Clock())
    a = make(approvals)
    assert a.approval_id.startswith("apv_") and len(a.approval_id) > 20
    assert approvals.get(a.approval_id) == a
    assert [p.approval_id for p in approvals.pending()] == [a.approval_id]
    assert approvals.pending(team="other") == []
    assert steps.steps == [(a.approval_id, "requested", None)]


def test_approve_then_consume_once_for_same_user_and_digest(store: SqlStore) -> None:
    clock = Clock()
    steps = Steps()
    approvals = Approvals(store, steps, retry_ttl_s=600, clock=clock)
    a = make(approvals)
    decided = approvals.approve(a.approval_id, "bob", "ok for the migration")
    assert (decided.status, decided.decided_by, decided.note) == ("approved", "bob", "ok for the migration")
    assert decided.expires_at == clock.now + 600
    assert approvals.consume("mallory", a.digest) is None  # another user
    assert approvals.consume("alice", "e" * 64) is None  # other content
    used = approvals.consume("alice", a.digest)
    assert used is not None and used.status == "used"
    assert approvals.consume("alice", a.digest) is None  # once
    assert [s[1:] for s in steps.steps] == [("requested", None), ("approved", "bob"), ("used", None)]


def test_approval_unused_past_its_ttl_does_not_pass(store: SqlStore) -> None:
    clock = Clock()
    approvals = Approvals(store, retry_ttl_s=60, clock=clock)
    a = make(approvals)
    approvals.approve(a.approval_id, "bob")
    clock.now += 61
    assert approvals.consume("alice", a.digest) is None
    assert approvals.expire_overdue() == 1
    assert approvals.get(a.approval_id).status == "expired"


def test_decisions_are_final_and_errors_are_precise(store: SqlStore) -> None:
    clock = Clock()
    approvals = Approvals(store, clock=clock)
    a = make(approvals)
    with pytest.raises(ApprovalError, match="no approval with id apv_nope"):
        approvals.approve("apv_nope", "bob")
    with pytest.raises(ApprovalError, match="cannot approve their own request"):
        approvals.approve(a.approval_id, "alice")
    with pytest.raises(ApprovalError, match="name is required"):
        approvals.deny(a.approval_id, "  ")
    approvals.deny(a.approval_id, "bob", "no keys to that vendor")
    with pytest.raises(ApprovalError, match="already denied by bob"):
        approvals.approve(a.approval_id, "carol")
    b = make(approvals, digest="b" * 64, ttl_s=10)
    clock.now += 11
    with pytest.raises(ApprovalError, match="expired"):
        approvals.approve(b.approval_id, "bob")
    assert approvals.get(b.approval_id).status == "expired"


def test_racing_approve_and_deny_exactly_one_wins(store: SqlStore) -> None:
    steps = Steps()
    approvals = Approvals(store, steps)
    for round_ in range(5):
        a = make(approvals, digest=f"{round_:064d}")
        barrier = threading.Barrier(6)
        wins: list[str] = []
        losses: list[str] = []

        def decide(
            i: int,
            approval_id: str = a.approval_id,
            barrier: threading.Barrier = barrier,
            wins: list[str] = wins,
            losses: list[str] = losses,
        ) -> None:
            barrier.wait()
            try:
                (approvals.approve if i % 2 else approvals.deny)(approval_id, f"approver-{i}")
                wins.append(f"approver-{i}")
            except ApprovalError:
                losses.append(f"approver-{i}")

        threads = [threading.Thread(target=decide, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(wins) == 1 and len(losses) == 5
        final = approvals.get(a.approval_id)
        assert final.decided_by == wins[0]
        assert [s for s in steps.steps if s[0] == a.approval_id and s[1] in ("approved", "denied")] == [
            (a.approval_id, final.status, wins[0])
        ]


def test_racing_consumers_use_an_approval_once(store: SqlStore) -> None:
    approvals = Approvals(store)
    a = make(approvals)
    approvals.approve(a.approval_id, "bob")
    barrier = threading.Barrier(6)
    got: list[Approval | None] = []

    def consume() -> None:
        barrier.wait()
        got.append(approvals.consume("alice", a.digest))

    threads = [threading.Thread(target=consume) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for g in got if g is not None) == 1


def test_expire_keeps_a_decision_that_won_and_cancel_is_journalled(store: SqlStore) -> None:
    steps = Steps()
    approvals = Approvals(store, steps)
    a = make(approvals)
    approvals.approve(a.approval_id, "bob")
    assert approvals.expire(a.approval_id).status == "approved"  # the decision came first
    assert approvals.use(a.approval_id).status == "used"
    assert approvals.use(a.approval_id) is None
    b = make(approvals, digest="c" * 64)
    assert approvals.cancel(b.approval_id).status == "cancelled"
    assert (b.approval_id, "cancelled", None) in steps.steps
    assert approvals.expire(b.approval_id).status == "cancelled"


@given(
    user=st.text(min_size=1, max_size=20),
    other=st.text(min_size=1, max_size=20),
    body=st.binary(max_size=200),
)
def test_digest_separates_user_api_and_body(user: str, other: str, body: bytes) -> None:
    d = request_digest(user, "anthropic.messages", body)
    assert d == request_digest(user, "anthropic.messages", body)
    assert len(d) == 64
    if other != user:
        assert request_digest(other, "anthropic.messages", body) != d
        # No ambiguity between where the user ends and the body starts.
        assert request_digest(user + other, "anthropic.messages", body) != request_digest(
            user, "anthropic.messages", other.encode() + body
        )
    assert request_digest(user, "openai.responses", body) != d
    assert request_digest(user, "anthropic.messages", body + b" ") != d
