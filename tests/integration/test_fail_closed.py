"""Fail closed: whichever stage breaks, the request is refused natively, nothing reaches the
provider, and the audit says which stage failed."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from egress.core.exchange import Api
from egress.wire import apis

MESSAGES = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 10,
    "stream": True,
    "messages": [{"role": "user", "content": "hi"}],
}


class Boom(RuntimeError):
    pass


def boom(*_args, **_kwargs):
    raise Boom("injected failure")


class FailingScanner:
    def scan(self, prompt, budget=None):
        raise Boom("detector crashed")


class FailingPolicy:
    """An engine with a bug: not an evaluation error, an exception nobody planned for."""

    revision = "test:failing"

    async def evaluate(self, document):
        raise Boom("engine crashed")

    def close(self):
        pass


    async def aclose(self):

        pass


class MalformedPolicy:
    revision = "test:malformed"

    def __init__(self, output):
        self.output = output

    async def evaluate(self, document):
        return self.output

    def close(self):
        pass


    async def aclose(self):

        pass


def use_engine(gateway, monkeypatch, engine) -> None:
    """Replace the policy engine behind the running gateway's policy service."""
    monkeypatch.setattr(gateway.gateway.app.pipeline.decider.policy, "engine", engine)


class FailingMasker:
    def apply(self, *args):
        raise Boom("masker crashed")


class FailingUpstream:
    async def send(self, *args):
        raise Boom("client bug")


def inject(gateway, monkeypatch, stage: str) -> None:
    pipeline = gateway.gateway.app.pipeline
    if stage == "parse":
        broken = dataclasses.replace(apis.APIS[Api.ANTHROPIC_MESSAGES], parse_request=boom)
        monkeypatch.setitem(apis.APIS, Api.ANTHROPIC_MESSAGES, broken)
    elif stage == "inspect":
        monkeypatch.setattr(pipeline, "scanner", FailingScanner())
    elif stage == "decide":
        monkeypatch.setattr(pipeline.decider.policy, "engine", FailingPolicy())
    elif stage == "mask":
        monkeypatch.setattr(pipeline, "masker", FailingMasker())
    elif stage == "forward":
        monkeypatch.setattr(pipeline.router, "upstream", FailingUpstream())


@pytest.mark.parametrize("stage", ["parse", "inspect", "decide", "mask", "forward"])
def test_a_failing_stage_refuses_and_forwards_nothing(gateway, upstream, monkeypatch, stage):
    inject(gateway, monkeypatch, stage)
    r = httpx.post(gateway.url + "/v1/messages", json=MESSAGES, headers={"x-egress-key": gateway.key})
    assert r.status_code == 500
    body = r.json()
    assert body["type"] == "error" and body["error"]["details"]["error_code"] == "stage_failed"
    assert stage in body["error"]["message"]
    assert "injected" not in r.text and "crashed" not in r.text  # internals are not echoed
    assert r.headers["x-should-retry"] == "false"
    assert upstream.received == []
    (record,) = gateway.audit(1)
    assert record["error_stage"] == stage and record["error_code"] == "stage_failed"
    assert record["outcome"] in ("refused", "failed")
    assert record["upstream_body_sha256"] is None or stage == "forward"


@pytest.mark.parametrize(
    "output",
    [
        None,
        {"action": "teleport", "endpoints": ["sim-anthropic"]},
        {"action": "allow", "endpoints": ["sim-openai"]},  # not a candidate for an Anthropic request
        {"action": "allow", "endpoints": ["somewhere-else"]},
        {"action": "allow", "endpoints": "sim-anthropic"},
        {"action": "allow", "endpoints": ["sim-anthropic"], "mask": [1]},
    ],
)
def test_a_malformed_decision_is_a_deny(gateway, upstream, monkeypatch, output):
    use_engine(gateway, monkeypatch, MalformedPolicy(output))
    r = httpx.post(gateway.url + "/v1/messages", json=MESSAGES, headers={"x-egress-key": gateway.key})
    assert r.status_code == 500 and r.json()["error"]["details"]["error_code"] == "policy_invalid"
    assert upstream.received == []
    (record,) = gateway.audit(1)
    assert record["error_code"] == "policy_invalid" and record["error_stage"] == "decide"


@pytest.mark.parametrize("action", ["block", "require_approval"])
def test_block_decisions_are_final_refusals(gateway, upstream, monkeypatch, action):
    policy = MalformedPolicy({"action": action, "endpoints": [], "reasons": ["secrets must not leave"]})
    use_engine(gateway, monkeypatch, policy)
    r = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": []},
        headers={"x-egress-key": gateway.key},
    )
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["code"] == "policy_denied" and "secrets must not leave" in error["message"]
    assert upstream.received == []
    (record,) = gateway.audit(1)
    assert record["decision"]["action"] == action and record["outcome"] == "refused"


def test_mask_decision_without_a_masking_key_refuses(gateway, upstream, monkeypatch):
    from egress.core.exchange import Finding
    from egress.mask.masker import Masker

    class OneFinding:
        def scan(self, prompt, budget=None):
            return (Finding("secret", "test-rule", 0, 0, 2, 1.0),)

    pipeline = gateway.gateway.app.pipeline
    monkeypatch.setattr(pipeline, "scanner", OneFinding())
    monkeypatch.setattr(pipeline, "masker", Masker(placeholders=None))
    use_engine(gateway, monkeypatch, MalformedPolicy({"action": "mask", "endpoints": ["sim-anthropic"], "mask": ["secret"]}))
    r = httpx.post(gateway.url + "/v1/messages", json=MESSAGES, headers={"x-egress-key": gateway.key})
    assert r.status_code == 403 and r.json()["error"]["details"]["error_code"] == "policy_denied"
    assert upstream.received == []
    (record,) = gateway.audit(1)
    assert record["findings"] == {"total": 1, "kinds": {"secret": 1}, "rules": {"test-rule": 1}}
