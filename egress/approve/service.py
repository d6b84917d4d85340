"""The approvals service: create, decide, use once, expire, cancel. Synchronous and store-backed:
call it from threads, the CLI or the console, never on the event loop (see `desk` for that).

Invariants:
- every state change is a conditional update in the shared store, so two approvers, or an
  approver and an expiring gateway, racing on one approval cannot both win;
- an approved approval is used at most once (`consume` / `use`), by the user who asked, for the
  identical masked request (its digest), before its deadline;
- identical requests (same user, API and masked body) share one pending approval (`request`):
  a retry before the decision joins the approval already waiting, across replicas too;
- every step is journalled (the audit chain) with who took it; nothing here holds prompt content.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from egress.approve.settings import ApprovalSettings
from egress.core.approvals import Approval, ApprovalStatus

log = logging.getLogger("egress.approve")

# (the approval after the step, the step, who took it: an approver, or None for the gateway)
Journal = Callable[[Approval, str, str | None], None]
Listener = Callable[[Approval], None]

# A consumer racing another for the same approval retries with the next candidate this often.
_CONSUME_TRIES = 5


class ApprovalStore(Protocol):
    """What the service needs of the store (`SqlStore` implements it)."""

    def approval_create(self, approval: Approval) -> None: ...

    def approval_get(self, approval_id: str) -> Approval | None: ...

    def approval_list(
        self, statuses: Sequence[ApprovalStatus] | None, team: str | None, limit: int
    ) -> list[Approval]: ...

    def approval_decide(
        self, approval_id: str, status: ApprovalStatus, by: str, at: float, note: str | None, expires_at: float
    ) -> bool: ...

    def approval_transition(
        self, approval_id: str, from_status: ApprovalStatus, to_status: ApprovalStatus, at: float
    ) -> bool: ...

    def approval_retry_candidates(self, user: str, digest: str, now: float) -> list[str]: ...

    def approval_join_or_create(self, approval: Approval, now: float) -> tuple[str, bool]: ...

    def approval_overdue(self, now: float) -> list[str]: ...


class ApprovalError(Exception):
    """An approval that cannot be decided: unknown id, already decided, expired, not allowed."""


def new_approval_id() -> str:
    return "apv_" + secrets.token_urlsafe(18)


def request_digest(user: str, api: str, masked_body: bytes) -> str:
    """SHA-256 over the user, the API and the masked body (length-prefixed: no ambiguity)."""
    head = b"egress.approval.v1\n%d:%s\n%d:%s\n" % (len(user.encode()), user.encode(), len(api), api.encode())
    return hashlib.sha256(head + masked_body).hexdigest()


class Approvals:
    def __init__(
        self,
        store: ApprovalStore,
        journal: Journal | None = None,
        *,
        retry_ttl_s: float = ApprovalSettings().retry_ttl_s,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._journal = journal
        self.retry_ttl_s = retry_ttl_s
        self._clock = clock
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def add_listener(self, listener: Listener) -> None:
        """Called (from the deciding thread) after an approval of this process was decided."""
        with self._lock:
            self._listeners.append(listener)

    # --- reading ----------------------------------------------------------------------------

    def get(self, approval_id: str) -> Approval | None:
        return self._store.approval_get(approval_id)

    def pending(self, team: str | None = None) -> list[Approval]:
        """Approvals waiting for a decision, newest first (overdue ones are expired first)."""
        self.expire_overdue()
        return self._store.approval_list((ApprovalStatus.PENDING,), team, 1000)

    def recent(self, limit: int = 50, team: str | None = None) -> list[Approval]:
        """Approvals in any state, newest first."""
        self.expire_overdue()
        return self._store.approval_list(None, team, limit)

    # --- approvers -----------------------------------------------------------------------------

    def approve(self, approval_id: str, approver: str, note: str | None = None) -> Approval:
        return self._decide(approval_id, ApprovalStatus.APPROVED, approver, note)

    def deny(self, approval_id: str, approver: str, note: str | None = None) -> Approval:
        return self._decide(approval_id, ApprovalStatus.DENIED, approver, note)

    def _decide(self, approval_id: str, status: ApprovalStatus, approver: str, note: str | None) -> Approval:
        approver = approver.strip()
        if not approver:
            raise ApprovalError("an approver's name is required")
        current = self._store.approval_get(approval_id)
        if current is None:
            raise ApprovalError(f"no approval with id {approval_id}")
        if status == ApprovalStatus.APPROVED and approver == current.user:
            raise ApprovalError(f"not allowed: {approver} cannot approve their own request ({approval_id})")
        now = self._clock()
        if current.status != ApprovalStatus.PENDING:
            raise ApprovalError(_already(current))
        if current.expires_at <= now:
            self._expire(approval_id, now)
            raise ApprovalError(f"approval {approval_id} expired at {_iso(current.expires_at)}; nothing was decided")
        deadline = now + self.retry_ttl_s if status == ApprovalStatus.APPROVED else current.expires_at
        if not self._store.approval_decide(approval_id, status, approver, now, note, deadline):
            latest = self._store.approval_get(approval_id)
            if latest is not None and latest.status == ApprovalStatus.PENDING:
                self._expire(approval_id, now)  # it passed its deadline between our read and write
                raise ApprovalError(f"approval {approval_id} expired; nothing was decided")
            raise ApprovalError(_already(latest) if latest else f"no approval with id {approval_id}")
        decided = self._reread(approval_id)
        self._record(decided, status, approver)
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(decided)
        return decided

    # --- the gateway ---------------------------------------------------------------------------

    def create(
        self,
        *,
        user: str,
        team: str | None,
        request_id: str,
        api: str,
        model: str | None,
        endpoints: Sequence[str],
        reasons: Sequence[str],
        kinds: dict[str, int],
        rules: dict[str, int],
        digest: str,
        ttl_s: float,
    ) -> Approval:
        """A new pending approval that an approver may decide within `ttl_s`."""
        approval = _pending(
            self._clock(), user, team, request_id, api, model, endpoints, reasons, kinds, rules, digest, ttl_s
        )
        self._store.approval_create(approval)
        self._record(approval, "requested", None)
        return approval

    def request(
        self,
        *,
        user: str,
        team: str | None,
        request_id: str,
        api: str,
        model: str | None,
        endpoints: Sequence[str],
        reasons: Sequence[str],
        kinds: dict[str, int],
        rules: dict[str, int],
        digest: str,
        ttl_s: float,
    ) -> tuple[Approval, bool]:
        """The pending approval this request waits on: the one an identical earlier request (same
        user and digest) opened, while it is still pending and unexpired, else a new one.
        Returns (approval, created); only a created one is journalled as `requested`."""
        now = self._clock()
        fresh = _pending(now, user, team, request_id, api, model, endpoints, reasons, kinds, rules, digest, ttl_s)
        approval_id, created = self._store.approval_join_or_create(fresh, now)
        if created:
            self._record(fresh, "requested", None)
            return fresh, True
        log.info(
            "request %s joins pending approval %s (an identical request is waiting on it)", request_id, approval_id
        )
        return self._reread(approval_id), False

    def consume(self, user: str, digest: str) -> Approval | None:
        """Use (once) an approved, unused, unexpired approval of `user` for this digest, if any."""
        now = self._clock()
        for _ in range(_CONSUME_TRIES):
            candidates = self._store.approval_retry_candidates(user, digest, now)
            if not candidates:
                return None
            for approval_id in candidates:
                if self._store.approval_transition(approval_id, ApprovalStatus.APPROVED, ApprovalStatus.USED, now):
                    used = self._reread(approval_id)
                    self._record(used, ApprovalStatus.USED, None)
                    return used
        return None

    def use(self, approval_id: str) -> Approval | None:
        """The held request goes out on its own approval: approved -> used, once. None if it is
        not approved (any more)."""
        if not self._store.approval_transition(
            approval_id, ApprovalStatus.APPROVED, ApprovalStatus.USED, self._clock()
        ):
            return None
        used = self._reread(approval_id)
        self._record(used, ApprovalStatus.USED, None)
        return used

    def expire(self, approval_id: str) -> Approval:
        """Nobody decided in time: pending -> expired. Returns the approval as it now stands
        (decided, if a decision won the race)."""
        self._expire(approval_id, self._clock())
        return self._reread(approval_id)

    def cancel(self, approval_id: str) -> Approval:
        """The held client went away: pending or approved -> cancelled."""
        now = self._clock()
        for before in (ApprovalStatus.PENDING, ApprovalStatus.APPROVED):
            if self._store.approval_transition(approval_id, before, ApprovalStatus.CANCELLED, now):
                cancelled = self._reread(approval_id)
                self._record(cancelled, ApprovalStatus.CANCELLED, None)
                return cancelled
        return self._reread(approval_id)

    def expire_overdue(self) -> int:
        """Mark every pending or unused approval past its deadline expired (journalled)."""
        now = self._clock()
        overdue = self._store.approval_overdue(now)
        return sum(
            1
            for approval_id in overdue
            if self._expire(approval_id, now, (ApprovalStatus.PENDING, ApprovalStatus.APPROVED))
        )

    # --- internals -----------------------------------------------------------------------------

    def _expire(
        self, approval_id: str, now: float, states: tuple[ApprovalStatus, ...] = (ApprovalStatus.PENDING,)
    ) -> bool:
        for before in states:
            if self._store.approval_transition(approval_id, before, ApprovalStatus.EXPIRED, now):
                self._record(self._reread(approval_id), ApprovalStatus.EXPIRED, None)
                return True
        return False

    def _reread(self, approval_id: str) -> Approval:
        approval = self._store.approval_get(approval_id)
        if approval is None:
            raise ApprovalError(f"no approval with id {approval_id}")
        return approval

    def _record(self, approval: Approval, step: str, actor: str | None) -> None:
        if self._journal is not None:
            self._journal(approval, step, actor)


def _already(approval: Approval) -> str:
    by = (
        f" by {approval.decided_by}"
        if approval.decided_by and approval.status in (ApprovalStatus.APPROVED, ApprovalStatus.DENIED)
        else ""
    )
    return f"approval {approval.approval_id} is already {approval.status}{by}"


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def _pending(
    now: float,
    user: str,
    team: str | None,
    request_id: str,
    api: str,
    model: str | None,
    endpoints: Sequence[str],
    reasons: Sequence[str],
    kinds: dict[str, int],
    rules: dict[str, int],
    digest: str,
    ttl_s: float,
) -> Approval:
    """A new pending approval, undecided, that expires `ttl_s` after `now`."""
    return Approval(
        approval_id=new_approval_id(),
        status=ApprovalStatus.PENDING,
        user=user,
        team=team,
        request_id=request_id,
        api=api,
        model=model,
        endpoints=tuple(endpoints),
        reasons=tuple(reasons),
        kinds=dict(kinds),
        rules=dict(rules),
        digest=digest,
        created_at=now,
        expires_at=now + ttl_s,
        decided_by=None,
        decided_at=None,
        note=None,
    )
