"""The fail-closed stage boundary: refusals and cancellations pass through as they are; any other
failure becomes the stage's own refusal, logged by its type only."""

from __future__ import annotations

import asyncio
import logging

import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.gateway.router import Attempt
from egress.gateway.stage import StageBoundary, run_stage


def crash(detail: str) -> int:
    raise KeyError(detail)


def test_a_result_passes_through():
    assert run_stage("parse", lambda a, b: a + b, 2, 3) == 5


def test_a_crash_becomes_the_stages_refusal_and_the_log_names_its_type_only(caplog):
    with caplog.at_level(logging.ERROR, logger="egress.gateway"):
        with pytest.raises(EgressError) as caught:
            run_stage("inspect", crash, "sk-live-secret-value")
    err = caught.value
    assert err.code is ErrorCode.STAGE_FAILED
    assert err.stage == "inspect"
    assert err.message == "the inspect stage failed; the request was not sent"
    assert isinstance(err.__cause__, KeyError)
    assert caplog.messages == ["stage inspect failed: KeyError"]
    assert "sk-live-secret-value" not in caplog.text


def test_a_refusal_of_the_stage_passes_unchanged():
    refusal = EgressError(ErrorCode.POLICY_DENIED, "blocked by policy: no", stage="decide")
    with pytest.raises(EgressError) as caught:
        with StageBoundary("decide"):
            raise refusal
    assert caught.value is refusal


def test_an_awaited_stage_and_its_own_message():
    async def forward() -> None:
        with StageBoundary("forward", "the forward stage failed"):
            await asyncio.sleep(0)
            raise RuntimeError("mid-answer")

    with pytest.raises(EgressError) as caught:
        asyncio.run(forward())
    assert (caught.value.code, caught.value.stage, caught.value.message) == (
        ErrorCode.STAGE_FAILED,
        "forward",
        "the forward stage failed",
    )


def test_a_cancellation_is_not_a_stage_failure():
    async def cancelled() -> None:
        with StageBoundary("approve"):
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(cancelled())


def test_a_failed_attempt_reads_as_the_errors_details():
    assert Attempt("eu", "circuit_open").detail() == {"endpoint": "eu", "cause": "circuit_open"}
    assert Attempt("us", "http_status", 503).detail() == {"endpoint": "us", "cause": "http_status", "status": 503}
