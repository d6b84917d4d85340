"""Audit records as the console shows them: rows for lists, searches with filters and keyset
pagination, and the data-flow summary. Every query is limited to the viewer's team.

Records hold no values (egress.audit.record), so showing them whole is safe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from egress.admin.accounts import Viewer
from egress.audit.export import ExportFilter
from egress.core.audit_record import EGRESS_OUTCOME, parse_record
from egress.core.records import StoredAudit
from egress.report.flows import classify
from egress.store.base import SqlStore

# How many stored records a search reads at most for one page when it filters on values inside
# the record (finding kind, decision): bounded work per request, "more" links continue.
_SCAN_BATCH = 500
_SCAN_LIMIT = 20_000


class QueryError(ValueError):
    """A filter that cannot be read (the message names it)."""


@dataclass(frozen=True, slots=True)
class RecordRow:
    seq: int
    request_id: str
    ts: float
    user: str | None
    team: str | None
    client: str | None
    model: str | None
    action: str | None
    endpoint: str | None
    jurisdiction: str | None
    kinds: dict[str, int]
    status: int | None
    outcome: str
    recorded: bool  # the decision obliged recording the payload

    @property
    def time(self) -> str:
        return datetime.fromtimestamp(self.ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def row_of(stored: StoredAudit) -> RecordRow:
    record = parse_record(stored.entry.canonical)
    return RecordRow(
        seq=stored.seq,
        request_id=stored.entry.request_id,
        ts=stored.entry.ts,
        user=stored.entry.user,
        team=stored.entry.team,
        client=record.client,
        model=record.model,
        action=record.decision.action if record.decision else None,
        endpoint=stored.entry.endpoint,
        jurisdiction=stored.entry.jurisdiction,
        kinds=dict(record.findings.kinds) if record.findings else {},
        status=stored.entry.status,
        outcome=stored.entry.outcome,
        recorded=record.records_payload,
    )


def record_json(stored: StoredAudit) -> str:
    return orjson.dumps(
        orjson.loads(stored.entry.canonical), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    ).decode()


def _a_request(stored: StoredAudit) -> bool:
    """A row of live traffic and search is a request's own record. Its write-ahead egress records
    (outcome `egress`: one per attempted endpoint, committed before the bytes left) are listed on
    the request's record page (`egress_rows`), not as rows of their own."""
    return stored.entry.outcome != EGRESS_OUTCOME


def recent(store: SqlStore, viewer: Viewer, limit: int = 50) -> list[RecordRow]:
    # Each forwarded request has an egress record beside its own: read twice the rows, keep `limit`.
    rows = store.audit_search(team=viewer.scope, limit=2 * limit)
    return [row_of(s) for s in rows if _a_request(s)][:limit]


def visible_record(store: SqlStore, viewer: Viewer, request_id: str) -> StoredAudit | None:
    """The record of a request, or None when there is none or the viewer may not see it."""
    stored = store.audit_by_request(request_id)
    return stored if stored is not None and viewer.sees(stored.entry.team) else None


def egress_rows(store: SqlStore, stored: StoredAudit) -> list[RecordRow]:
    """The write-ahead egress records of a request the viewer may see (`visible_record` first):
    where its bytes were about to go, each committed before they left."""
    return [row_of(s) for s in store.audit_egress_of(stored.entry.request_id) if s.entry.team == stored.entry.team]


# --- search ----------------------------------------------------------------------------------


def parse_time(text: str, name: str) -> float | None:
    """An ISO 8601 date or date-time (UTC unless it says otherwise); empty means no limit."""
    text = text.strip()
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(f"{name}: {text!r} is not a date or time (use 2026-01-31 or 2026-01-31T14:00)") from None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


@dataclass(frozen=True, slots=True)
class Search:
    """The audit search form's filters, as typed in (strings; empty means any)."""

    since: str = ""
    until: str = ""
    user: str = ""
    team: str = ""
    endpoint: str = ""
    jurisdiction: str = ""
    kind: str = ""
    decision: str = ""

    @classmethod
    def of(cls, params: Any) -> Search:
        return cls(**{k: str(params.get(k, "")).strip() for k in cls.__dataclass_fields__})

    def selector(self, viewer: Viewer) -> ExportFilter:
        """The export filter these fields select, limited to the viewer's team."""
        team = self.team or None
        if viewer.scope is not None:
            team = viewer.scope
        return ExportFilter(
            since=parse_time(self.since, "from"),
            until=parse_time(self.until, "until"),
            user=self.user or None,
            team=team,
            endpoint=self.endpoint or None,
            jurisdiction=self.jurisdiction or None,
            kind=self.kind or None,
            decision=self.decision or None,
        )

    def query(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__ if getattr(self, k)}


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[RecordRow]
    next_before: int | None  # the `before` of the next (older) page; None when this is the last


def search(store: SqlStore, selector: ExportFilter, before: int | None, size: int = 50) -> Page:
    """Newest first; columns filter in SQL, finding kind and decision on the parsed record."""
    found: list[StoredAudit] = []
    cursor = before
    scanned = 0
    while len(found) < size + 1 and scanned < _SCAN_LIMIT:
        batch = store.audit_search(
            since=selector.since,
            until=selector.until,
            user=selector.user,
            team=selector.team,
            endpoint=selector.endpoint,
            jurisdiction=selector.jurisdiction,
            before_seq=cursor,
            limit=_SCAN_BATCH,
        )
        if not batch:
            break
        scanned += len(batch)
        found.extend(s for s in batch if _a_request(s) and selector.matches(s))
        cursor = batch[-1].seq
    rows = [row_of(s) for s in found[:size]]
    more = len(found) > size or (scanned >= _SCAN_LIMIT and cursor is not None)
    return Page(rows, (rows[-1].seq if rows else cursor) if more else None)


# --- data flow -------------------------------------------------------------------------------

NO_FINDINGS = "none"


@dataclass(frozen=True, slots=True)
class Flow:
    """Who sent what to where: counts of requests by (team, user, endpoint, jurisdiction), and
    of those requests by data class and where it went ("pii masked", "secret clear", "none
    clear", "proprietary_code in-house", "secret blocked": egress.report.flows)."""

    requests: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    classes: dict[tuple[str, str, str, str], dict[str, int]] = field(default_factory=dict)
    truncated: bool = False

    def edges(self, left: int, right: int) -> list[tuple[str, str, int]]:
        """Aggregated links between two columns (0 team, 1 user, 2 endpoint, 3 jurisdiction)."""
        totals: Counter[tuple[str, str]] = Counter()
        for key, count in self.requests.items():
            totals[(key[left], key[right])] += count
        return [(a, b, n) for (a, b), n in sorted(totals.items())]

    def nodes(self, column: int) -> list[tuple[str, int]]:
        totals: Counter[str] = Counter()
        for key, count in self.requests.items():
            totals[key[column]] += count
        return sorted(totals.items())


_FLOW_LIMIT = 200_000


def data_flow(store: SqlStore, viewer: Viewer, since: float, until: float) -> Flow:
    """Requests that reached an endpoint in [since, until), limited to the viewer's team."""
    requests: Counter[tuple[str, str, str, str]] = Counter()
    classes: dict[tuple[str, str, str, str], Counter[str]] = {}
    cursor: int | None = None
    scanned = 0
    while scanned < _FLOW_LIMIT:
        batch = store.audit_search(since=since, until=until, team=viewer.scope, before_seq=cursor, limit=_SCAN_BATCH)
        if not batch:
            break
        scanned += len(batch)
        cursor = batch[-1].seq
        for stored in batch:
            e = stored.entry
            if e.endpoint is None or e.outcome == EGRESS_OUTCOME:
                # Refused before routing: nothing left. A write-ahead egress record: its
                # request's own record (same endpoint, or the last one tried) counts it once.
                continue
            key = (e.team or "(no team)", e.user or "(anonymous)", e.endpoint, e.jurisdiction or "?")
            requests[key] += 1
            per = classes.setdefault(key, Counter())
            # Where each data class went, as the compliance pack counts it (egress.report.flows):
            # a masked finding left as a placeholder, not as its value.
            for kind, column in classify(parse_record(e.canonical)):
                per[f"{kind} {column.value.replace('_', '-')}"] += 1
    return Flow(dict(requests), {k: dict(v) for k, v in classes.items()}, truncated=scanned >= _FLOW_LIMIT)
