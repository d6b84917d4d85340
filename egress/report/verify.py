"""`egress report verify`: the report's figures recomputed from a complete audit export, and its
evidence anchors checked against the export's signed checkpoints, so an auditor trusts the numbers
without trusting the gateway.

It fails when the export does not verify (a record edited, removed, inserted or reordered, a
checkpoint forged: `egress.audit.export.verify_export`), when the export is filtered (it cannot
prove it holds every record of the period), when a figure or the flow map differs from the one
recomputed, or when an anchor is not one of the export's valid checkpoints."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from egress.audit.export import Export, verify_export
from egress.report.evidence import Anchor
from egress.report.figures import compute
from egress.report.flowmap import flow_map
from egress.report.model import REPORT_FORMAT
from egress.report.render_json import figures_json


@dataclass(frozen=True, slots=True)
class ReportCheck:
    problems: tuple[str, ...]
    records: int  # records of the period recomputed
    anchors: int  # anchors matched to a signed checkpoint of the export
    covered: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_report(report: dict[str, Any], export: Export, public: Ed25519PublicKey) -> ReportCheck:
    if report.get("format") != REPORT_FORMAT:
        return ReportCheck((f"not an egress report (format {report.get('format')!r})",), 0, 0, False)
    shape = _shape_problem(report)
    if shape is not None:
        return ReportCheck((shape,), 0, 0, False)
    problems: list[str] = []
    audit = verify_export(export, public)
    problems += [f"the export does not verify: record {b.seq}: {b.reason}" for b in audit.breaks]
    if not export.complete:
        problems.append("the export is filtered: only a complete export proves the period's figures")
    stated = report["figures"]
    figures = compute(export.records, float(stated["since"]), float(stated["until"]))
    recomputed = figures_json(figures)
    for key in sorted(set(recomputed) | set(stated)):
        if recomputed.get(key) != stated.get(key):
            problems.append(f"figure {key!r} differs from the one recomputed from the export")
    flows = flow_map(figures)
    stated_map = report["data_flow"]
    for key in ("svg", "mermaid", "dot"):
        if stated_map.get(key) != getattr(flows, key):
            problems.append(f"the data-flow map ({key}) differs from the one recomputed from the export")
    signed = {(cp.seq, cp.key_id): cp for cp in export.checkpoints}
    matched = 0
    for doc in report["anchors"]:
        anchor = Anchor(**doc)
        cp = signed.get((anchor.seq, anchor.key_id))
        if cp is None or Anchor.of(cp) != anchor:
            problems.append(f"anchor at record {anchor.seq} (key {anchor.key_id}) is not a checkpoint of the export")
        else:
            matched += 1
    last = figures.last_seq
    covered = not last or any(a["seq"] >= last for a in report["anchors"])
    notes = () if covered else (f"records after the last anchor up to {last} are protected by the chain only",)
    return ReportCheck(tuple(problems), figures.records, matched, covered, notes)


_ANCHOR_KEYS = frozenset(Anchor.__dataclass_fields__)


def _shape_problem(report: dict[str, Any]) -> str | None:
    """Why the document cannot be a report this version wrote, or None (checked before use, so a
    damaged file is named rather than crashing the check)."""
    figures, anchors = report.get("figures"), report.get("anchors")
    if not isinstance(figures, dict) or not all(isinstance(figures.get(k), int | float) for k in ("since", "until")):
        return "the report has no figures with a numeric period (since, until)"
    if not isinstance(report.get("data_flow"), dict):
        return "the report has no data-flow map"
    if not isinstance(anchors, list):
        return "the report's anchors are not a list"
    for i, anchor in enumerate(anchors):
        if not isinstance(anchor, dict) or set(anchor) != _ANCHOR_KEYS or not isinstance(anchor["seq"], int):
            return f"anchor {i} is not a checkpoint (seq, hash, signature, key_id, ts, first, root)"
    return None
