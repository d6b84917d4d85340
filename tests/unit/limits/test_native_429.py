"""An exceeded limit is each API family's native 429 with retry-after: Anthropic
rate_limit_error, OpenAI code rate_limit_exceeded, Gemini RESOURCE_EXHAUSTED with RetryInfo."""

from __future__ import annotations

import orjson
import pytest

from egress.audit.record import build_entry
from egress.core.audit_record import parse_record
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Exchange, Outcome, Principal
from egress.gateway.responder import Responder
from egress.wire.apis import APIS


def refusal() -> EgressError:
    return EgressError(
        ErrorCode.RATE_LIMITED,
        "the team limit requests_per_minute (5) is reached; retry in 17 s",
        stage="limits",
        details={"limit": "team qa requests_per_minute", "retry_after_s": 17},
        retry_after_s=17,
    )


async def respond(api: Api) -> tuple[int, dict[bytes, bytes], dict]:  # type: ignore[type-arg]
    sent: list[dict] = []  # type: ignore[type-arg]

    async def send(message: dict) -> None:  # type: ignore[type-arg]
        sent.append(message)

    await Responder(send, "req_x").fail(refusal(), APIS[api])
    start = sent[0]
    return start["status"], dict(start["headers"]), orjson.loads(sent[1]["body"])


async def test_anthropic() -> None:
    status, headers, body = await respond(Api.ANTHROPIC_MESSAGES)
    assert status == 429 and headers[b"retry-after"] == b"17" and headers[b"x-should-retry"] == b"true"
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["error"]["details"]["limit"] == "team qa requests_per_minute"


@pytest.mark.parametrize("api", [Api.OPENAI_CHAT, Api.OPENAI_RESPONSES, Api.OPENAI_COMPLETIONS])
async def test_openai(api: Api) -> None:
    status, headers, body = await respond(api)
    assert status == 429 and headers[b"retry-after"] == b"17"
    assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["type"] == "requests"


@pytest.mark.parametrize("api", [Api.GEMINI_GENERATE, Api.GEMINI_STREAM])
async def test_gemini(api: Api) -> None:
    status, headers, body = await respond(api)
    assert status == 429 and headers[b"retry-after"] == b"17"
    error = body["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    retry = [d for d in error["details"] if d["@type"].endswith("google.rpc.RetryInfo")]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "17s"}]


def _record(error: EgressError | None) -> bytes:
    x = Exchange(
        request_id="req_1", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
    )
    x.principal = Principal(user="alice", team="qa", key_id=None, method="gateway_key")
    x.error = error
    x.outcome = Outcome.REFUSED if error else Outcome.FORWARDED
    return build_entry(x).record.canonical()


def test_the_audit_names_the_limit_and_omits_the_key_otherwise() -> None:
    refused = _record(refusal())
    assert orjson.loads(refused)["limit"] == "team qa requests_per_minute"
    assert parse_record(refused).limit == "team qa requests_per_minute"
    assert parse_record(refused).canonical() == refused  # sorted keys, the same bytes back
    other = _record(EgressError(ErrorCode.POLICY_DENIED, "no"))
    assert b'"limit"' not in other and parse_record(other).limit is None
    assert b'"limit"' not in _record(None)
