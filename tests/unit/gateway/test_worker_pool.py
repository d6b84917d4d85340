"""Large bodies' parse, inspect and mask stages in worker processes (gateway/worker_pool.py).

Real spawned worker processes with a real (small) rule set and the real masker: what comes back
equals what the gateway's own stages compute, refusals cross as the native EgressError, the CPU
budget holds in a worker, and a worker killed mid-inspection fails only its request
(stage_failed) while the pool is replaced for the next one.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import time
from functools import partial
from pathlib import Path

import orjson
import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Api, Decision, ParsedRequest
from egress.detect.engine import RuleMatcher
from egress.detect.rules import load_rule_files
from egress.detect.scan import Scanner, TextScanner
from egress.gateway.offload import Offload
from egress.gateway.worker_pool import LARGE_VALUE_CHARS, TopLevelFields, WorkerStages
from egress.mask.masker import Masker
from egress.mask.placeholders import MaskingKeys, Placeholders
from egress.wire.anthropic import parse_request as PARSE
from tests.support.processes import worker_processes

RULES = """
[[rules]]
id = "gitlab-pat"
description = "GitLab personal access token"
regex = '''glpat-[0-9A-Za-z_-]{20}'''
keywords = ["glpat-"]
"""
MASTER = bytes(range(32))
MASK = Decision(Action.MASK, ("sim",), ("secret",), (), "dec_1", "rev")


def stages() -> WorkerStages:
    """Built in each worker process (and here, for comparison): the same rules, the same key."""
    matcher = RuleMatcher(load_rule_files([("test.toml", RULES)], include_bundled=False))
    scanner = Scanner(TextScanner(matcher, max_findings=2000))
    return WorkerStages(scanner, Masker(Placeholders(MaskingKeys.derive(MASTER))))


def token() -> str:
    return "glpat-" + base64.urlsafe_b64encode(os.urandom(15)).decode()


def body_of(text: str, **fields: object) -> bytes:
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 16, **fields, "messages": [{"role": "user", "content": text}]}
    return orjson.dumps(doc)


@pytest.fixture(scope="module")
def offload():
    # process_body_bytes 0: every body goes to a worker process. One pool for the module: a
    # worker's start (a fresh interpreter) is most of these tests' time.
    pool = Offload(
        inline_body_bytes=0,
        inspect_inline_s=0.01,
        inspect_cpu_budget_s=5.0,
        process_body_bytes=0,
        worker_stages=stages,
    )
    yield pool
    pool.close()


def test_a_worker_finds_and_masks_what_the_gateway_would(offload):
    local = stages()
    secrets = [token() for _ in range(3)]
    body = body_of("deploy with " + " and ".join(secrets) + " please", store=False, metadata={"user_id": "u1"})

    async def go():
        parsed, findings = await offload.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, body)
        masked = await offload.mask(local.masker, PARSE, body, parsed, findings, MASK, None, None)
        return parsed, findings, masked

    parsed, findings, masked = asyncio.run(go())
    expected_parsed = local_parse(body)
    expected_findings = local.scanner.scan(expected_parsed.prompt)
    assert findings == expected_findings and len(findings) == 3
    # The gateway's process holds the top-level scalars only: what routing and the vault read.
    assert isinstance(parsed.document, TopLevelFields)
    assert dict(parsed.document) == {"model": "claude-sonnet-4-5", "max_tokens": 16, "store": False}
    assert (parsed.model, parsed.stream, parsed.prompt.segments) == ("claude-sonnet-4-5", False, ())
    expected = local.masker.apply(body, expected_parsed, expected_findings, MASK)
    assert masked == expected
    assert not any(s.encode() in masked.body for s in secrets)
    assert sorted(masked.placeholders.values()) == sorted(secrets)


def test_a_text_masked_whole_comes_back_whole(offload):
    """Past max_findings a text is secret-dense and masked whole: its original value (long) comes
    back through the shared file, not the pipe, and equals the gateway's own result."""
    local = stages()
    text = " ".join(token() for _ in range(3000))
    assert len(text) >= LARGE_VALUE_CHARS
    body = body_of(text)

    async def go():
        parsed, findings = await offload.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, body)
        return findings, await offload.mask(local.masker, PARSE, body, parsed, findings, MASK, None, None)

    findings, masked = asyncio.run(go())
    expected_parsed = local_parse(body)
    expected = local.masker.apply(body, expected_parsed, local.scanner.scan(expected_parsed.prompt), MASK)
    assert len(findings) == 1
    assert masked == expected
    assert list(masked.placeholders.values()) == [text]
    assert b"glpat-" not in masked.body


def test_an_unchanged_body_is_the_request_s_own_bytes(offload):
    local = stages()
    body = body_of("nothing to see " * 100)

    async def go():
        parsed, findings = await offload.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, body)
        return findings, await offload.mask(local.masker, PARSE, body, parsed, findings, MASK, None, None)

    findings, masked = asyncio.run(go())
    assert findings == ()
    assert masked.body is body and masked.placeholders == {} and masked.masked_count == 0


def test_a_refusal_in_a_worker_is_the_same_native_error(offload):
    local = stages()
    bad = b'{"model": "claude-sonnet-4-5", "messages": ['

    with pytest.raises(EgressError) as in_worker:
        asyncio.run(offload.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, bad))
    with pytest.raises(EgressError) as in_gateway:
        local_parse(bad)
    assert in_worker.value.code is ErrorCode.INVALID_JSON
    assert (in_worker.value.code, in_worker.value.message, in_worker.value.stage, in_worker.value.details) == (
        in_gateway.value.code,
        in_gateway.value.message,
        in_gateway.value.stage,
        in_gateway.value.details,
    )


def test_the_cpu_budget_holds_in_a_worker(tmp_path):
    local = stages()
    tight = Offload(
        inline_body_bytes=0,
        inspect_inline_s=0.01,
        inspect_cpu_budget_s=0.001,
        process_body_bytes=0,
        worker_stages=stages,
    )
    try:
        dense = body_of(" ".join(token() for _ in range(20_000)))
        with pytest.raises(EgressError) as refused:
            asyncio.run(tight.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, dense))
        assert (refused.value.code, refused.value.stage) == (ErrorCode.INSPECTION_BUDGET_EXCEEDED, "inspect")
    finally:
        tight.close()


def test_a_closed_pool_refuses_natively():
    pool = Offload(
        inline_body_bytes=0, inspect_inline_s=0.01, inspect_cpu_budget_s=5.0, process_body_bytes=0, worker_stages=stages
    )
    pool.close()
    with pytest.raises(EgressError) as refused:
        asyncio.run(pool.parse_inspect(stages().scanner, PARSE, Api.ANTHROPIC_MESSAGES, body_of("hello")))
    assert (refused.value.code, refused.value.stage) == (ErrorCode.STAGE_FAILED, "inspect")


class HoldingScanner(Scanner):
    """A scanner that, given the word HOLD, says which process it runs in and waits there: the
    test kills that worker in the middle of an inspection."""

    def __init__(self, inner: Scanner, announce: Path) -> None:
        super().__init__(inner.text_scanner)
        self.announce = announce

    def scan(self, prompt, budget=None):
        if any("HOLD" in segment.text for segment in prompt.segments):
            written = self.announce.with_suffix(".tmp")
            written.write_text(str(os.getpid()))
            written.replace(self.announce)  # whole, or not there yet
            time.sleep(60)
        return super().scan(prompt, budget)


def holding_stages(announce: Path) -> WorkerStages:
    plain = stages()
    return WorkerStages(HoldingScanner(plain.scanner, announce), plain.masker)


def test_a_killed_worker_fails_its_request_and_the_pool_recovers(tmp_path):
    announce = tmp_path / "worker.pid"
    pool = Offload(
        inline_body_bytes=0,
        inspect_inline_s=0.01,
        inspect_cpu_budget_s=5.0,
        process_body_bytes=0,
        worker_stages=partial(holding_stages, announce),
    )
    local = stages()
    small = body_of("hello " + token())

    async def go():
        held = asyncio.ensure_future(pool.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, body_of("HOLD")))
        deadline = time.monotonic() + 60
        while not announce.exists():
            assert time.monotonic() < deadline and not held.done(), "no worker took the request"
            await asyncio.sleep(0.01)
        victim = int(announce.read_text())
        assert victim in worker_processes(os.getpid())
        os.kill(victim, signal.SIGKILL)
        with pytest.raises(EgressError) as failed:
            await held
        # A fresh pool answers the next request, with the same result as ever.
        after = await pool.parse_inspect(local.scanner, PARSE, Api.ANTHROPIC_MESSAGES, small)
        return victim, failed.value, after, worker_processes(os.getpid())

    try:
        victim, error, (parsed, findings), workers_now = asyncio.run(go())
    finally:
        pool.close()
    assert (error.code, error.stage, error.status) == (ErrorCode.STAGE_FAILED, "inspect", 500)
    assert len(findings) == 1 and findings[0].rule_id == "gitlab-pat"
    assert victim not in workers_now


def local_parse(body: bytes) -> ParsedRequest:
    return PARSE(Api.ANTHROPIC_MESSAGES, body)
