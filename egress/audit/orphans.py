"""Orphan egress records: write-ahead records whose request never got its own record.

The gateway commits a request's egress record (outcome "egress", one per attempt) before the
attempt's first byte leaves, and the request's own record (its outcome) once the request ends.
An egress record with no own record after it for the same request id means the body left, or
may have left, and the gateway stopped before it could record how the request ended (killed,
power lost), or, on a live store, that the request is still in flight. Information for the
auditor, not a break: the chain is intact.

Invariant: only request ids, sequence numbers and counts are kept and reported, never a value
from a record (records hold no secrets either; this keeps the report to what identifies them).
"""

from __future__ import annotations

from dataclasses import dataclass

from egress.core.audit_record import APPROVAL_TYPE, EGRESS_OUTCOME
from egress.core.records import StoredAudit

# Approval steps (outcome "approval_<step>") share the request id but end nothing.
_APPROVAL_STEP = APPROVAL_TYPE + "_"


@dataclass(frozen=True, slots=True)
class OrphanEgress:
    """A request with egress records and no own record: its id, how many attempts were recorded
    and the sequence number of the last one."""

    request_id: str
    attempts: int
    last_seq: int


class OrphanTracker:
    """Fed every record in chain order; holds the requests whose egress records still wait for
    their own record (as many as were in flight at once, not the whole chain)."""

    def __init__(self) -> None:
        self._waiting: dict[str, OrphanEgress] = {}

    def feed(self, stored: StoredAudit) -> None:
        entry = stored.entry
        if entry.outcome == EGRESS_OUTCOME:
            earlier = self._waiting.get(entry.request_id)
            attempts = earlier.attempts + 1 if earlier is not None else 1
            self._waiting[entry.request_id] = OrphanEgress(entry.request_id, attempts, stored.seq)
        elif not entry.outcome.startswith(_APPROVAL_STEP):
            self._waiting.pop(entry.request_id, None)

    def orphans(self) -> tuple[OrphanEgress, ...]:
        """The requests still waiting, in chain order of their last egress record."""
        return tuple(sorted(self._waiting.values(), key=lambda o: o.last_seq))
