"""A request's stage timings, kept while it runs, for the metrics (policy evaluation time) and
the trace (one child span per stage).

`RequestMarks` lives in a context variable for the duration of `Pipeline.handle`: the stage
boundary (gateway/stage.py) finds it there without every stage passing it along. A context
variable is the request's own (asyncio gives each task a copy), not shared state: it is set at
the start of a request and reset at its end. Where telemetry is off it is never set, and a stage
pays one `ContextVar.get`.

A stage run on a worker thread or process (large bodies: gateway/offload.py) does not see the
variable (an executor does not carry the context): its time is inside its parent's span only.
Stages nest (restore runs inside forward): each knows its enclosing stage.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token

# The running request's marks; None outside a request, or with telemetry off.
CURRENT: ContextVar[RequestMarks | None] = ContextVar("egress_request_marks", default=None)


class Stage:
    """One stage as it ran: perf_counter nanoseconds; `parent` indexes the enclosing stage."""

    __slots__ = ("name", "start_ns", "end_ns", "parent")

    def __init__(self, name: str, start_ns: int, parent: int) -> None:
        self.name = name
        self.start_ns = start_ns
        self.end_ns = 0  # 0 while it runs
        self.parent = parent  # -1: the request itself


class RequestMarks:
    __slots__ = ("stages", "_open", "token")

    def __init__(self) -> None:
        self.stages: list[Stage] = []
        self._open: list[int] = []  # indices of the stages running now, innermost last
        self.token: Token[RequestMarks | None] | None = None

    def open(self, name: str) -> None:
        opened = self._open
        self.stages.append(Stage(name, time.perf_counter_ns(), opened[-1] if opened else -1))
        opened.append(len(self.stages) - 1)

    def close(self) -> None:
        if self._open:
            self.stages[self._open.pop()].end_ns = time.perf_counter_ns()

    def stage_ns(self, name: str) -> int:
        """The time spent in finished stages of this name (0 when none ran)."""
        return sum(s.end_ns - s.start_ns for s in self.stages if s.name == name and s.end_ns)


def begin() -> RequestMarks:
    """Start a request's marks; `end` must follow in the same task."""
    marks = RequestMarks()
    marks.token = CURRENT.set(marks)
    return marks


def end(marks: RequestMarks) -> None:
    if marks.token is not None:
        CURRENT.reset(marks.token)
        marks.token = None
