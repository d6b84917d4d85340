"""A server-rendered picture of the data flow: three columns (team/user, endpoint,
jurisdiction) with links whose width follows the number of requests. Pure layout; the template
draws it as SVG (presentation attributes only, no inline style: the CSP forbids it).

A link's colour and detail say where its data classes went, as the compliance pack counts them
(egress.report.flows): a finding that was masked left as a placeholder, never as its value, so
only a finding in clear colours a link as sensitive data leaving."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from egress.admin.records import Flow

WIDTH = 900
ROW = 34
TOP = 30
COLUMNS = (40, 390, 740)  # x of each column's node boxes
BOX_W = 150
BOX_H = 24


@dataclass(frozen=True, slots=True)
class Node:
    x: int
    y: int
    label: str
    count: int


@dataclass(frozen=True, slots=True)
class Link:
    x1: int
    y1: int
    x2: int
    y2: int
    width: float
    count: int
    detail: str  # "pii masked 2, none clear 1": requests by data class and where it went
    colour: str


@dataclass(frozen=True, slots=True)
class Graph:
    width: int
    height: int
    nodes: list[Node]
    links: list[Link]


def layout(flow: Flow) -> Graph:
    senders: dict[str, int] = {}
    for (team, user, _e, _j), n in flow.requests.items():
        label = f"{team} / {user}"
        senders[label] = senders.get(label, 0) + n
    columns = [sorted(senders.items()), flow.nodes(2), flow.nodes(3)]
    where: list[dict[str, int]] = []
    nodes: list[Node] = []
    for x, items in zip(COLUMNS, columns, strict=True):
        ys = {}
        for i, (label, count) in enumerate(items):
            y = TOP + i * ROW
            ys[label] = y
            nodes.append(Node(x, y, label, count))
        where.append(ys)
    first: dict[tuple[str, str], int] = {}
    for (team, user, endpoint, _j), n in flow.requests.items():
        key = (f"{team} / {user}", endpoint)
        first[key] = first.get(key, 0) + n
    second = flow.edges(2, 3)
    # The widest link is the busiest one, in either stage.
    biggest = max([*first.values(), *(n for _e, _j, n in second)], default=1)
    by_sender: dict[tuple[str, str], Counter[str]] = {}
    by_endpoint: dict[tuple[str, str], Counter[str]] = {}
    for (team, user, endpoint, jurisdiction), per in flow.classes.items():
        by_sender.setdefault((f"{team} / {user}", endpoint), Counter()).update(per)
        by_endpoint.setdefault((endpoint, jurisdiction), Counter()).update(per)
    links: list[Link] = []
    for (sender, endpoint), n in sorted(first.items()):
        classes = by_sender.get((sender, endpoint), Counter())
        links.append(_link(COLUMNS[0], where[0][sender], COLUMNS[1], where[1][endpoint], n, biggest, classes))
    for endpoint, jurisdiction, n in second:
        classes = by_endpoint.get((endpoint, jurisdiction), Counter())
        links.append(_link(COLUMNS[1], where[1][endpoint], COLUMNS[2], where[2][jurisdiction], n, biggest, classes))
    rows = max((len(c) for c in columns), default=0)
    return Graph(WIDTH, TOP + max(rows, 1) * ROW + 10, nodes, links)


CLEAR, MASKED, IN_HOUSE, NEUTRAL = "#c0392b", "#d68910", "#1e8449", "#7a9cc6"


def colour(classes: Counter[str]) -> str:
    """Red when a data class other than `none` left in clear, else orange when one left masked,
    green when all stayed in-house, else the neutral blue."""
    kinds = [label.rsplit(" ", 1) for label in classes]
    if any(where == "clear" and kind != "none" for kind, where in kinds):
        return CLEAR
    if any(where == "masked" for _kind, where in kinds):
        return MASKED
    if kinds and all(where == "in-house" for _kind, where in kinds):
        return IN_HOUSE
    return NEUTRAL


def _link(x1: int, y1: int, x2: int, y2: int, count: int, biggest: int, classes: Counter[str]) -> Link:
    mid = BOX_H // 2
    detail = ", ".join(f"{label} {n}" for label, n in sorted(classes.items()))
    width = round(1.5 + 10 * count / max(biggest, 1), 1)
    return Link(x1 + BOX_W, y1 + mid, x2, y2 + mid, width, count, detail, colour(classes))
