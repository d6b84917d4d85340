"""A server-rendered picture of the data flow: three columns (team/user, endpoint,
jurisdiction) with links whose width follows the number of requests. Pure layout; the template
draws it as SVG (presentation attributes only, no inline style: the CSP forbids it)."""

from __future__ import annotations

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
    links: list[Link] = []
    for (sender, endpoint), n in sorted(first.items()):
        links.append(_link(COLUMNS[0], where[0][sender], COLUMNS[1], where[1][endpoint], n, biggest))
    for endpoint, jurisdiction, n in second:
        links.append(_link(COLUMNS[1], where[1][endpoint], COLUMNS[2], where[2][jurisdiction], n, biggest))
    rows = max((len(c) for c in columns), default=0)
    return Graph(WIDTH, TOP + max(rows, 1) * ROW + 10, nodes, links)


def _link(x1: int, y1: int, x2: int, y2: int, count: int, biggest: int) -> Link:
    mid = BOX_H // 2
    return Link(x1 + BOX_W, y1 + mid, x2, y2 + mid, round(1.5 + 10 * count / max(biggest, 1), 1), count)
