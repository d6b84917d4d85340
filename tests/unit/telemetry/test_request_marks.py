"""Stage marks: kept only while a request's marks are set, nested as the stages run, and each
request's own (a context variable per task)."""

from __future__ import annotations

import asyncio

import pytest

from egress.core.errors import EgressError
from egress.gateway.stage import StageBoundary, run_stage
from egress.telemetry import request
from egress.telemetry.request import CURRENT

OUTER = StageBoundary("forward")


def test_without_marks_a_stage_records_nothing() -> None:
    assert CURRENT.get() is None
    with OUTER:
        assert run_stage("restore", lambda: 1) == 1
    assert CURRENT.get() is None


def test_stages_nest_and_a_failed_stage_still_ends() -> None:
    marks = request.begin()
    try:
        with OUTER:
            run_stage("restore", lambda: None)
            with pytest.raises(EgressError):
                run_stage("translate", lambda: 1 / 0)  # a failure of the stage: refused, and marked
        run_stage("decide", lambda: None)
    finally:
        request.end(marks)
    assert CURRENT.get() is None
    names = [(s.name, s.parent) for s in marks.stages]
    assert names == [("forward", -1), ("restore", 0), ("translate", 0), ("decide", -1)]
    assert all(s.end_ns >= s.start_ns > 0 for s in marks.stages)
    assert marks.stage_ns("decide") == marks.stages[3].end_ns - marks.stages[3].start_ns


async def test_each_request_task_has_its_own_marks() -> None:
    async def one(name: str) -> list[str]:
        marks = request.begin()
        try:
            for _ in range(3):
                with StageBoundary(name):
                    await asyncio.sleep(0)
        finally:
            request.end(marks)
        return [s.name for s in marks.stages]

    a, b = await asyncio.gather(one("a"), one("b"))
    assert a == ["a"] * 3 and b == ["b"] * 3
