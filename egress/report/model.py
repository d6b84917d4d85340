"""The compliance pack as one typed object: the figures (from the audit alone) and the sections
built from them and the report context. `build` is pure: the same records, checkpoints and
context give the same report (and the same JSON bytes)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from egress.core.records import Checkpoint, StoredAudit
from egress.report.art30 import Art30Record, art30
from egress.report.context import ReportContext
from egress.report.dpia import Scenario, dpia
from egress.report.evidence import Anchor, anchors, covered
from egress.report.figures import Figures, compute
from egress.report.flowmap import FlowMap, flow_map
from egress.report.law import JurisdictionLaw, government_access
from egress.report.requirements import SECTION_REQUIREMENTS, by_code

REPORT_FORMAT = "egress.report.v1"


@dataclass(frozen=True, slots=True)
class ReasonCited:
    code: str
    meaning: str
    decisions: int
    requirements: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EndpointChecklist:
    endpoint: str
    configured: bool  # False: the endpoint is in the audit but no longer in the configuration
    answers: dict[str, object]  # egress.checklist's answers; empty when not computed (the console)


@dataclass(frozen=True, slots=True)
class Report:
    format: str
    catalog_version: str
    home_jurisdictions: tuple[str, ...]
    figures: Figures
    data_flow: FlowMap
    art30: Art30Record
    dpia: tuple[Scenario, ...]
    government_access: tuple[JurisdictionLaw, ...]
    checklists: tuple[EndpointChecklist, ...]
    reasons: tuple[ReasonCited, ...]
    requirements: dict[str, tuple[str, ...]]  # per section
    anchors: tuple[Anchor, ...]
    covered: bool  # a signed checkpoint vouches for the period's last record


def build(
    records: Iterable[StoredAudit],
    checkpoints: Sequence[Checkpoint],
    context: ReportContext,
    since: float,
    until: float,
) -> Report:
    return assemble(compute(records, since, until), checkpoints, context)


def assemble(figures: Figures, checkpoints: Sequence[Checkpoint], context: ReportContext) -> Report:
    found = anchors(checkpoints, figures.first_seq, figures.last_seq)
    return Report(
        format=REPORT_FORMAT,
        catalog_version=context.catalog_version,
        home_jurisdictions=context.home_jurisdictions,
        figures=figures,
        data_flow=flow_map(figures),
        art30=art30(figures, context),
        dpia=dpia(figures, context),
        government_access=government_access(figures, context),
        checklists=tuple(
            EndpointChecklist(
                use.name,
                use.name in context.endpoints,
                context.checklists[use.name].model_dump(mode="json") if use.name in context.checklists else {},
            )
            for use in figures.endpoints
        ),
        reasons=tuple(
            ReasonCited(code, by_code(code).meaning, n, by_code(code).requirements)
            for code, n in figures.reasons.items()
        ),
        requirements=dict(sorted(SECTION_REQUIREMENTS.items())),
        anchors=found,
        covered=covered(found, figures.last_seq) if figures.first_seq else True,
    )
