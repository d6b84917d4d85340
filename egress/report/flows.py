"""Where each data class of a request went: the one rule the report and the console's flow view
share.

Columns, for each data class a request carried (a finding kind, or `none` without findings):
- `clear`: the request left for an external endpoint with values of that kind as written;
- `masked`: it left, with every value of that kind replaced by a placeholder (a masked value of
  that kind is on record);
- `blocked`: it never left (refused by the policy or before routing);
- `in_house`: it went to a self-hosted endpoint (jurisdiction `self`), so it never left the
  organisation.

Invariant: a finding counts as having left in clear only when no masked value of its kind is on
record for the request; a request counts once per data class, whatever its findings' count.
"""

from __future__ import annotations

from enum import StrEnum

from egress.core.audit_record import APPROVAL_TYPE, EGRESS_TYPE, AuditRecord

NO_FINDINGS = "none"
SELF_HOSTED = "self"
NO_ENDPOINT = "(none)"
REFUSED = "refused"
BLOCK = "block"


class Column(StrEnum):
    CLEAR = "clear"
    MASKED = "masked"
    BLOCKED = "blocked"
    IN_HOUSE = "in_house"


COLUMNS = (Column.CLEAR, Column.MASKED, Column.BLOCKED, Column.IN_HOUSE)


def is_request(record: AuditRecord) -> bool:
    """A request's own record (not a write-ahead egress record nor an approval step)."""
    return record.type not in (EGRESS_TYPE, APPROVAL_TYPE)


def left(record: AuditRecord) -> bool:
    """The request's body went to an endpoint (or may have: a failed upstream path had started)."""
    if record.endpoint is None or record.outcome == REFUSED:
        return False
    return record.decision is None or record.decision.action != BLOCK


def classify(record: AuditRecord) -> list[tuple[str, Column]]:
    """(data class, column) for each data class of a request's own record, sorted by class."""
    kinds = sorted(record.findings.kinds) if record.findings and record.findings.kinds else [NO_FINDINGS]
    if not left(record):
        return [(kind, Column.BLOCKED) for kind in kinds]
    if record.jurisdiction == SELF_HOSTED:
        return [(kind, Column.IN_HOUSE) for kind in kinds]
    masked = {v.kind for v in record.masked.values} if record.masked else set()
    return [(kind, Column.MASKED if kind in masked else Column.CLEAR) for kind in kinds]
