"""The data-flow map: teams → endpoints → jurisdictions, per data class and column (clear,
masked, blocked, in-house: egress.report.flows), as SVG, Mermaid and DOT. Each rendering is
deterministic text built from the sorted figures (no layout engine)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from egress.report.figures import Figures, FlowRow
from egress.report.flows import COLUMNS, NO_ENDPOINT, Column

BLOCKED_NODE = "(blocked)"
COLOURS = {Column.CLEAR: "#c0392b", Column.MASKED: "#d68910", Column.BLOCKED: "#7f8c8d", Column.IN_HOUSE: "#1e8449"}


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    column: Column
    requests: int
    classes: tuple[str, ...]  # data classes on this edge, with their counts ("pii 3")
    stage: int  # 0: team → endpoint; 1: endpoint → jurisdiction

    @property
    def label(self) -> str:
        return f"{self.column.value}: {', '.join(self.classes)}"


@dataclass(frozen=True, slots=True)
class FlowMap:
    teams: tuple[str, ...]
    endpoints: tuple[str, ...]
    jurisdictions: tuple[str, ...]
    edges: tuple[Edge, ...]  # team → endpoint, then endpoint → jurisdiction
    svg: str
    mermaid: str
    dot: str


def _count(row: FlowRow, column: Column) -> int:
    return int(getattr(row, column.value))


def edges(flows: tuple[FlowRow, ...]) -> list[Edge]:
    first: dict[tuple[str, str, Column], dict[str, int]] = {}
    second: dict[tuple[str, str, Column], dict[str, int]] = {}
    for row in flows:
        endpoint = BLOCKED_NODE if row.endpoint == NO_ENDPOINT else row.endpoint
        for column in COLUMNS:
            n = _count(row, column)
            if not n:
                continue
            per = first.setdefault((row.team, endpoint, column), {})
            per[row.data_class] = per.get(row.data_class, 0) + n
            if column is not Column.BLOCKED:
                per = second.setdefault((endpoint, row.jurisdiction, column), {})
                per[row.data_class] = per.get(row.data_class, 0) + n
    out = []
    for stage, table in enumerate((first, second)):
        for (a, b, column), classes in sorted(table.items()):
            listed = tuple(f"{k} {n}" for k, n in sorted(classes.items()))
            out.append(Edge(a, b, column, sum(classes.values()), listed, stage))
    return out


def flow_map(figures: Figures) -> FlowMap:
    found = edges(figures.flows)
    teams = tuple(sorted({r.team for r in figures.flows}))
    endpoints = tuple(sorted({e.target for e in found if e.stage == 0}))
    jurisdictions = tuple(sorted({e.target for e in found if e.stage == 1}))
    return FlowMap(
        teams,
        endpoints,
        jurisdictions,
        tuple(found),
        svg(teams, endpoints, jurisdictions, found),
        mermaid(teams, endpoints, jurisdictions, found),
        dot(teams, endpoints, jurisdictions, found),
    )


def _ids(teams: tuple[str, ...], endpoints: tuple[str, ...], jurisdictions: tuple[str, ...]) -> dict[str, str]:
    ids: dict[str, str] = {}
    for prefix, names in (("t", teams), ("e", endpoints), ("j", jurisdictions)):
        for i, name in enumerate(names):
            ids.setdefault(f"{prefix}:{name}", f"{prefix}{i}")
    return ids


def _key(edge: Edge) -> tuple[str, str]:
    return (f"t:{edge.source}", f"e:{edge.target}") if edge.stage == 0 else (f"e:{edge.source}", f"j:{edge.target}")


def mermaid(
    teams: tuple[str, ...], endpoints: tuple[str, ...], jurisdictions: tuple[str, ...], found: list[Edge]
) -> str:
    ids = _ids(teams, endpoints, jurisdictions)
    lines = ["flowchart LR"]
    for key, node in ids.items():
        label = key.split(":", 1)[1].replace('"', "'")
        lines.append(f'  {node}["{label}"]')
    for edge in found:
        a, b = _key(edge)
        lines.append(f'  {ids[a]} -->|"{edge.label} ({edge.requests})"| {ids[b]}')
    return "\n".join(lines) + "\n"


def dot(teams: tuple[str, ...], endpoints: tuple[str, ...], jurisdictions: tuple[str, ...], found: list[Edge]) -> str:
    ids = _ids(teams, endpoints, jurisdictions)
    lines = ["digraph dataflow {", "  rankdir=LR;", "  node [shape=box];"]
    for key, node in ids.items():
        label = key.split(":", 1)[1].replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'  {node} [label="{label}"];')
    for edge in found:
        a, b = _key(edge)
        label = f"{edge.label} ({edge.requests})".replace('"', '\\"')
        lines.append(f'  {ids[a]} -> {ids[b]} [label="{label}", color="{COLOURS[edge.column]}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


_X = (20, 320, 620)
_BOX_W, _BOX_H, _ROW, _TOP = 200, 26, 40, 40


def svg(teams: tuple[str, ...], endpoints: tuple[str, ...], jurisdictions: tuple[str, ...], found: list[Edge]) -> str:
    columns = (teams, endpoints, jurisdictions)
    y: dict[str, int] = {}
    for prefix, names in zip(("t", "e", "j"), columns, strict=True):
        for i, name in enumerate(names):
            y[f"{prefix}:{name}"] = _TOP + i * _ROW
    height = _TOP + max((len(c) for c in columns), default=1) * _ROW + 20 + 20 * len(COLUMNS)
    width = _X[2] + _BOX_W + 20
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        '<text x="20" y="20" font-weight="bold">teams</text><text x="320" y="20" font-weight="bold">endpoints</text>'
        '<text x="620" y="20" font-weight="bold">jurisdictions</text>',
    ]
    seen: dict[tuple[str, str], int] = {}
    for edge in found:
        a, b = _key(edge)
        col = edge.stage
        offset = seen.get((a, b), 0)
        seen[(a, b)] = offset + 1
        y1, y2 = y[a] + 8 + 4 * offset, y[b] + 8 + 4 * offset
        out.append(
            f'<line x1="{_X[col] + _BOX_W}" y1="{y1}" x2="{_X[col + 1]}" y2="{y2}" stroke="{COLOURS[edge.column]}" '
            f'stroke-width="2"><title>{escape(edge.label)} ({edge.requests})</title></line>'
        )
    for prefix, names, x in zip(("t", "e", "j"), columns, _X, strict=True):
        for name in names:
            top = y[f"{prefix}:{name}"]
            out.append(
                f'<rect x="{x}" y="{top}" width="{_BOX_W}" height="{_BOX_H}" rx="4" fill="#eef2f7" stroke="#44617f"/>'
                f'<text x="{x + 6}" y="{top + 17}">{escape(name[:30])}</text>'
            )
    legend = height - 20 * len(COLUMNS)
    for i, column in enumerate(COLUMNS):
        ly = legend + 20 * i
        out.append(
            f'<line x1="20" y1="{ly}" x2="50" y2="{ly}" stroke="{COLOURS[column]}" stroke-width="3"/>'
            f'<text x="56" y="{ly + 4}">{column.value.replace("_", "-")}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
