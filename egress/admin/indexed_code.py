"""The console's "Indexed code" page: the indexed repositories, when each was indexed, and how
many requests carried code of each over a period (from the audit: the findings' rule ids
`proprietary-code:<repo>`, which name the repository and never hold code)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import orjson

from egress.core.provenance import IndexedRepo
from egress.store.base import SqlStore

CODE_RULE_PREFIX = "proprietary-code:"  # egress.detect.scan.CODE_RULE_PREFIX
# The most recent audit records read for the counts: the page stays cheap on a long audit.
AUDIT_WINDOW = 20_000


@dataclass(frozen=True, slots=True)
class IndexedCodeRow:
    repo: IndexedRepo
    requests: int  # requests in the period with code of this repository


@dataclass(frozen=True, slots=True)
class IndexedCodeReport:
    rows: tuple[IndexedCodeRow, ...]
    since: float
    records_read: int
    unindexed: tuple[tuple[str, int], ...]  # matched repositories no longer indexed, with counts


def indexed_code_report(store: SqlStore, since: float) -> IndexedCodeReport:
    """Blocking (the store): call it off the event loop."""
    matched: Counter[str] = Counter()
    stored = store.audit_tail(AUDIT_WINDOW)
    for row in stored:
        if row.entry.ts < since:
            continue
        record = orjson.loads(row.entry.canonical)
        rules = (record.get("findings") or {}).get("rules") or {}
        for repo in {r.removeprefix(CODE_RULE_PREFIX) for r in rules if r.startswith(CODE_RULE_PREFIX)}:
            matched[repo] += 1
    repos = store.provenance_repos()
    names = {r.name for r in repos}
    return IndexedCodeReport(
        rows=tuple(IndexedCodeRow(r, matched.get(r.name, 0)) for r in repos),
        since=since,
        records_read=len(stored),
        unindexed=tuple(sorted((name, n) for name, n in matched.items() if name not in names)),
    )
