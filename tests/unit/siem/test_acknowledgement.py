"""What counts as acknowledged: HEC's code 0, every bulk item 2xx, OTLP without rejected records;
backoff bounded by its cap, with jitter."""

from __future__ import annotations

import random

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.siem.backoff import backoff_delay
from egress.siem.http_json import _check_bulk, _check_hec
from egress.siem.sink import SinkError


def test_hec_needs_200_and_code_0() -> None:
    _check_hec("s", 200, b'{"text":"Success","code":0}')
    for status, body in ((200, b'{"text":"x","code":6}'), (503, b'{"text":"Server is busy","code":9}'), (200, b"")):
        with pytest.raises(SinkError):
            _check_hec("s", status, body)


def item(status: int, error: str | None = None) -> dict:
    result: dict = {"_id": "x", "status": status}
    if error:
        result["error"] = {"type": error, "reason": "r"}
    return {"index": result}


def test_bulk_partial_failure_fails_the_batch() -> None:
    ok = {"errors": False, "items": [item(201), item(200)]}
    _check_bulk("e", 200, orjson.dumps(ok), 2)
    partial = {"errors": True, "items": [item(201), item(429, "es_rejected_execution_exception")]}
    with pytest.raises(SinkError, match="1 of 2 items.*429 es_rejected_execution_exception"):
        _check_bulk("e", 200, orjson.dumps(partial), 2)
    with pytest.raises(SinkError, match="1 items for 2"):
        _check_bulk("e", 200, orjson.dumps({"errors": False, "items": [item(201)]}), 2)
    with pytest.raises(SinkError, match="answered 413"):
        _check_bulk("e", 413, b"", 2)


@given(st.integers(0, 200), st.floats(0.01, 10), st.floats(0.01, 100), st.integers(0, 2**32))
def test_backoff_is_bounded_and_jittered(attempt: int, initial: float, extra: float, seed: int) -> None:
    cap = initial + extra
    delay = backoff_delay(attempt, initial, cap, random.Random(seed))
    ceiling = min(cap, initial * 2**attempt)
    assert ceiling / 2 <= delay <= ceiling <= cap


def test_backoff_doubles_until_the_cap() -> None:
    rng = random.Random(1)
    ceilings = [max(backoff_delay(n, 0.5, 30, rng) for _ in range(200)) for n in range(10)]
    assert ceilings[0] <= 0.5 and 0.9 < ceilings[1] <= 1.0 and 28 < ceilings[9] <= 30
