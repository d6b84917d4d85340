"""DPIA input: for each provider and data class that left the organisation in the period, the
likelihood of the data being exposed (from the catalog facts: training on data, retention, ZDR,
government access, DPA) and the severity if it were (from the data class and whether it left in
clear or masked), combined in a low/medium/high scenario matrix, with the reasons."""

from __future__ import annotations

from dataclasses import dataclass

from egress.report.context import EndpointFacts, ReportContext
from egress.report.figures import Figures
from egress.report.law import in_eea

LOW, MEDIUM, HIGH = "low", "medium", "high"
_LEVELS = (LOW, MEDIUM, HIGH)
# Data classes whose values in clear would do serious harm if exposed.
SEVERE = frozenset(("secret", "pii", "proprietary_code", "sensitive_file"))
# The operator's home law reaches data wherever it is processed (catalog: operator_jurisdiction).
_FOREIGN_LAW_EXEMPT = ("self",)


@dataclass(frozen=True, slots=True)
class Scenario:
    endpoint: str
    data_class: str
    clear: int  # requests that carried it in clear
    masked: int
    likelihood: str
    severity: str
    risk: str
    reasons: tuple[str, ...]


def likelihood(f: EndpointFacts) -> tuple[str, list[str]]:
    points, why = 0, []
    if f.trains_on_api_data is None or f.trains_on_api_data:
        points += 2
        why.append("the operator trains on API data" if f.trains_on_api_data else "training on data is unknown")
    if f.zero_data_retention:
        why.append("zero data retention in effect")
    elif f.retention_days is None:
        points += 1
        why.append("retention unknown")
    elif f.retention_days > 0:
        points += 1
        why.append(f"kept up to {f.retention_days} days (no zero data retention)")
    operator = f.operator_jurisdiction
    if operator is None or (operator not in _FOREIGN_LAW_EXEMPT and not in_eea(operator)):
        points += 1
        laws = ", ".join(f.government_access) or "unknown law"
        why.append(f"government access under {laws}")
    if not f.dpa:
        points += 1
        why.append("no data processing agreement" if f.dpa is False else "DPA status unknown")
    return (LOW if points == 0 else MEDIUM if points <= 2 else HIGH), why


def severity(data_class: str, clear: int) -> tuple[str, str]:
    if not clear:
        return LOW, f"{data_class}: only placeholders left (masked)"
    if data_class in SEVERE:
        return HIGH, f"{data_class} left in clear"
    if data_class == "none":
        return LOW, "no finding: nothing sensitive detected"
    return MEDIUM, f"{data_class} left in clear"


def matrix(likely: str, severe: str) -> str:
    """The scenario matrix: the higher of the two, lowered one step when the other is low."""
    a, b = _LEVELS.index(likely), _LEVELS.index(severe)
    top = max(a, b)
    return _LEVELS[top - 1 if min(a, b) == 0 and top > 0 else top]


def dpia(figures: Figures, context: ReportContext) -> tuple[Scenario, ...]:
    cells: dict[tuple[str, str, str], list[int]] = {}
    for row in figures.flows:
        if row.clear or row.masked:
            cell = cells.setdefault((row.endpoint, row.jurisdiction, row.data_class), [0, 0])
            cell[0] += row.clear
            cell[1] += row.masked
    out = []
    for (endpoint, jurisdiction, data_class), (clear, masked) in sorted(cells.items()):
        likely, why = likelihood(context.facts(endpoint, jurisdiction))
        severe, because = severity(data_class, clear)
        out.append(
            Scenario(endpoint, data_class, clear, masked, likely, severe, matrix(likely, severe), (*why, because))
        )
    return tuple(out)
