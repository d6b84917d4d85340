"""The report's figures: everything the pack counts, computed from the audit records of a period
and nothing else, so `egress report verify` can recompute them from an audit export.

Deterministic: every collection is sorted, so the same records give the same figures (and the
same JSON bytes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from egress.core.audit_record import APPROVAL_TYPE, EGRESS_TYPE, AuditRecord, parse_record
from egress.core.records import StoredAudit
from egress.report.flows import COLUMNS, NO_ENDPOINT, Column, classify, left
from egress.report.requirements import reason_code

NO_TEAM = "(no team)"
# The bundled detection rules name personal-data detectors `pii-…`.
PII_RULE_PREFIX = "pii-"


@dataclass(frozen=True, slots=True)
class FlowRow:
    """Requests of one team to one endpoint carrying one data class, by where that class went."""

    team: str
    endpoint: str
    jurisdiction: str
    data_class: str
    clear: int
    masked: int
    blocked: int
    in_house: int

    @property
    def total(self) -> int:
        return self.clear + self.masked + self.blocked + self.in_house


@dataclass(frozen=True, slots=True)
class EndpointUse:
    name: str
    jurisdiction: str
    requests: int  # requests whose body went there


@dataclass(frozen=True, slots=True)
class Revision:
    """A policy revision in force: the first and last records that name it."""

    revision: str
    first_seq: int
    last_seq: int
    first_ts: float
    last_ts: float
    decisions: int


@dataclass(frozen=True, slots=True)
class Figures:
    since: float
    until: float
    first_seq: int  # 0 when the period holds no record
    last_seq: int
    records: int  # every record of the period, of every type
    requests: int  # requests' own records
    outcomes: dict[str, int]
    actions: dict[str, int]
    flows: tuple[FlowRow, ...]
    kinds: dict[str, int]  # requests carrying each finding kind
    detectors: dict[str, int]  # findings by rule id
    personal_data: dict[str, int]  # findings of personal-data detectors, by rule id
    masked_values: dict[str, int]  # masked values by kind
    endpoints: tuple[EndpointUse, ...]
    policy_revisions: tuple[Revision, ...]
    credential_plans: dict[str, int]
    reasons: dict[str, int]  # reason codes (egress.report.requirements) in decisions
    approvals: int  # approval steps recorded
    recorded: int  # requests whose payloads were sealed and kept


class FigureCounter:
    """Fed the records of a period in sequence order; `figures()` once they are all in."""

    def __init__(self, since: float, until: float) -> None:
        self.since, self.until = since, until
        self.first_seq = self.last_seq = self.records = self.requests = 0
        self.approvals = self.recorded = 0
        self.outcomes: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.flows: dict[tuple[str, str, str, str], list[int]] = {}
        self.kinds: Counter[str] = Counter()
        self.detectors: Counter[str] = Counter()
        self.personal: Counter[str] = Counter()
        self.masked: Counter[str] = Counter()
        self.endpoints: dict[tuple[str, str], int] = {}
        self.revisions: dict[str, list[float]] = {}
        self.plans: Counter[str] = Counter()
        self.reasons: Counter[str] = Counter()
        self._codes: dict[str, str] = {}

    def in_period(self, ts: float | None) -> bool:
        return ts is not None and self.since <= ts < self.until

    def feed_stored(self, stored: StoredAudit) -> None:
        if self.in_period(stored.entry.ts):
            self.feed(stored.seq, parse_record(stored.entry.canonical))

    def feed(self, seq: int, record: AuditRecord) -> None:
        self.first_seq = self.first_seq or seq
        self.last_seq = seq
        self.records += 1
        if record.type == APPROVAL_TYPE:
            self.approvals += 1
            return
        if record.type == EGRESS_TYPE:
            return  # its request's own record counts the request once
        self.requests += 1
        self.outcomes[record.outcome or "?"] += 1
        if record.credential_plan:
            self.plans[record.credential_plan] += 1
        if record.recorded:
            self.recorded += 1
        self._decision(seq, record)
        self._findings(record)
        team = record.team or NO_TEAM
        endpoint = record.endpoint or NO_ENDPOINT
        jurisdiction = record.jurisdiction or NO_ENDPOINT
        for data_class, column in classify(record):
            row = self.flows.setdefault((team, endpoint, jurisdiction, data_class), [0, 0, 0, 0])
            row[_INDEX[column]] += 1
        if left(record) and record.endpoint is not None:
            key = (record.endpoint, jurisdiction)
            self.endpoints[key] = self.endpoints.get(key, 0) + 1

    def _decision(self, seq: int, record: AuditRecord) -> None:
        decision = record.decision
        if decision is None:
            return
        self.actions[decision.action or "?"] += 1
        if decision.policy_revision:
            ts = float(record.ts or 0.0)
            seen = self.revisions.get(decision.policy_revision)
            if seen is None:
                self.revisions[decision.policy_revision] = [seq, seq, ts, ts, 1]
            else:
                seen[1], seen[3], seen[4] = seq, ts, seen[4] + 1
        codes = self._codes
        for reason in decision.reasons:
            code = codes.get(reason)
            if code is None:
                code = codes[reason] = reason_code(reason).code
            self.reasons[code] += 1

    def _findings(self, record: AuditRecord) -> None:
        findings = record.findings
        if findings is not None and findings.total:
            self.kinds.update(findings.kinds.keys())
            self.detectors.update(findings.rules)
            for rule, n in findings.rules.items():
                if rule.startswith(PII_RULE_PREFIX):
                    self.personal[rule] += n
        masked = record.masked
        if masked is not None:
            for value in masked.values:
                self.masked[value.kind or "?"] += value.occurrences or 1

    def figures(self) -> Figures:
        return Figures(
            since=self.since,
            until=self.until,
            first_seq=self.first_seq,
            last_seq=self.last_seq,
            records=self.records,
            requests=self.requests,
            outcomes=_sorted(self.outcomes),
            actions=_sorted(self.actions),
            flows=tuple(FlowRow(*key, *counts) for key, counts in sorted(self.flows.items())),
            kinds=_sorted(self.kinds),
            detectors=_sorted(self.detectors),
            personal_data=_sorted(self.personal),
            masked_values=_sorted(self.masked),
            endpoints=tuple(EndpointUse(name, j, n) for (name, j), n in sorted(self.endpoints.items())),
            policy_revisions=tuple(
                Revision(rev, int(v[0]), int(v[1]), v[2], v[3], int(v[4]))
                for rev, v in sorted(self.revisions.items(), key=lambda item: (item[1][0], item[0]))
            ),
            credential_plans=_sorted(self.plans),
            reasons=_sorted(self.reasons),
            approvals=self.approvals,
            recorded=self.recorded,
        )


# A flow's counts in FlowRow's field order.
_INDEX: dict[Column, int] = {column: i for i, column in enumerate(COLUMNS)}


def _sorted(counter: Counter[str]) -> dict[str, int]:
    return dict(sorted(counter.items()))


def compute(records: Iterable[StoredAudit], since: float, until: float) -> Figures:
    """The figures of the records with `since <= ts < until` (records in sequence order)."""
    counter = FigureCounter(since, until)
    for stored in records:
        counter.feed_stored(stored)
    return counter.figures()
