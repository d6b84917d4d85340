"""Masking end to end: official SDKs -> egress (real detection, default policy: mask secrets) ->
the upstream simulator, which plays a model that can only read what it was sent and answers
by citing the placeholders it saw.

Checked at the seams: the canary secrets never reach the upstream, from any text location of
any API; the client gets them back wherever the model cited them, in text and in tool-call
arguments, streamed and whole; recorded provider streams come back byte-exact with what the
provider would have sent had the model written the real values; turn 2's masked prompt starts
with turn 1's byte for byte; stateful Responses sessions restore from an encrypted vault; the
audit says what was masked and holds neither values nor placeholders."""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
import string
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from egress.gateway.auth import new_key
from tests.support.masking import sse
from tests.support.simulator import (
    Received,
    Reply,
    assemble_anthropic,
    assemble_chat,
    assemble_responses,
    fixtures_dir,
    recorded_streams,
    split_random,
)

PLACEHOLDER = re.compile(r"EGX_[A-Z0-9_]+_[a-z]{13}")
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}
JSON_HEADERS = {"content-type": "application/json"}


def canaries() -> dict[str, str]:
    aws = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    stripe = "sk_live_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))
    return {"aws": aws, "stripe": stripe}


def placeholders_in(received: Received, values: dict[str, str]) -> list[str]:
    """What the model saw: the canaries never, placeholders instead (in order of appearance)."""
    text = received.body.decode()
    for value in values.values():
        assert value not in text, "a canary reached the upstream"
    found = list(dict.fromkeys(PLACEHOLDER.findall(text)))
    assert len(found) == len(values), found
    return found


def by_kind(found: list[str]) -> dict[str, str]:
    return {"aws": next(p for p in found if "_AWS_" in p), "stripe": next(p for p in found if "STRIPE" in p)}


# --- scripted model answers, in each API's wire format ------------------------------------------


def anthropic_answer(text: str, command: str) -> bytes:
    args = json.dumps({"command": command})
    half = len(text) // 2
    return b"".join(
        [
            sse("message_start", {"type": "message_start", "message": {"id": "msg_sim", "type": "message", "role": "assistant", "model": "claude-sim", "content": [], "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[:half]}}),
            sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text[half:]}}),
            sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
            sse("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_sim", "name": "Bash", "input": {}}}),
            *[
                sse("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": args[i : i + 7]}})
                for i in range(0, len(args), 7)
            ],
            sse("content_block_stop", {"type": "content_block_stop", "index": 1}),
            sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None}, "usage": {"output_tokens": 20}}),
            sse("message_stop", {"type": "message_stop"}),
        ]
    )


def chat_answer(text: str, command: str) -> bytes:
    base = {"id": "chatcmpl-sim", "object": "chat.completion.chunk", "created": 1, "model": "gpt-sim"}
    args = json.dumps({"command": command})
    chunks = [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
    chunks += [{"index": 0, "delta": {"content": text[i : i + 5]}, "finish_reason": None} for i in range(0, len(text), 5)]
    calls = [{"index": 0, "id": "call_sim", "type": "function", "function": {"name": "sh", "arguments": ""}}]
    calls += [{"index": 0, "function": {"arguments": args[i : i + 6]}} for i in range(0, len(args), 6)]
    chunks += [{"index": 0, "delta": {"tool_calls": [c]}, "finish_reason": None} for c in calls]
    chunks.append({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
    out = [sse(None, {**base, "choices": [c]}) for c in chunks]
    out.append(sse(None, {**base, "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 9, "total_tokens": 14}}))
    out.append(sse(None, "[DONE]"))
    return b"".join(out)


def responses_answer(text: str, command: str, response_id: str = "resp_sim") -> bytes:
    args = json.dumps({"cmd": command})
    message = {"type": "message", "id": "msg_sim", "status": "completed", "role": "assistant", "content": [{"type": "output_text", "text": text, "annotations": []}]}
    call = {"type": "function_call", "id": "fc_sim", "call_id": "call_sim", "name": "exec_command", "arguments": args, "status": "completed"}
    response = {"id": response_id, "object": "response", "created_at": 1, "model": "gpt-sim", "status": "in_progress", "output": []}
    evs: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": response}),
        ("response.output_item.added", {"output_index": 0, "item": {**message, "status": "in_progress", "content": []}}),
        ("response.content_part.added", {"item_id": "msg_sim", "output_index": 0, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}}),
    ]
    evs += [
        ("response.output_text.delta", {"item_id": "msg_sim", "output_index": 0, "content_index": 0, "delta": text[i : i + 4], "logprobs": []})
        for i in range(0, len(text), 4)
    ]
    evs += [
        ("response.output_text.done", {"item_id": "msg_sim", "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
        ("response.content_part.done", {"item_id": "msg_sim", "output_index": 0, "content_index": 0, "part": message["content"][0]}),
        ("response.output_item.done", {"output_index": 0, "item": message}),
        ("response.output_item.added", {"output_index": 1, "item": {**call, "arguments": "", "status": "in_progress"}}),
    ]
    evs += [
        ("response.function_call_arguments.delta", {"item_id": "fc_sim", "output_index": 1, "delta": args[i : i + 6]})
        for i in range(0, len(args), 6)
    ]
    evs += [
        ("response.function_call_arguments.done", {"item_id": "fc_sim", "output_index": 1, "arguments": args}),
        ("response.output_item.done", {"output_index": 1, "item": call}),
        ("response.completed", {"response": {**response, "status": "completed", "output": [message, call], "usage": {"input_tokens": 5, "output_tokens": 9, "total_tokens": 14}}}),
    ]
    return b"".join(sse(name, {"type": name, **body, "sequence_number": n}) for n, (name, body) in enumerate(evs))


ANSWERS = {"anthropic": (anthropic_answer, assemble_anthropic), "chat": (chat_answer, assemble_chat), "responses": (responses_answer, assemble_responses)}


def scripted(api: str, stream: bool, values: dict[str, str], seen: list[Received]) -> Reply:
    """The model: reads the placeholders it was sent, writes them into text and a tool call."""
    make, assemble = ANSWERS[api]

    def build(received: Received) -> list[bytes]:
        seen.append(received)
        p = by_kind(placeholders_in(received, values))
        wire = make(f"Your AWS key is {p['aws']} and Stripe uses {p['stripe']}.", f"deploy --key {p['aws']}")
        if stream:
            return split_random(wire, random.Random(len(received.body)))
        return [json.dumps(assemble(wire)).encode()]

    return Reply(headers=SSE_HEADERS if stream else JSON_HEADERS, build=build)


# --- requests with a canary in every text location -----------------------------------------------


def anthropic_request(v: dict[str, str]) -> dict[str, Any]:
    return dict(
        model="claude-sonnet-4-5",
        max_tokens=200,
        system=[{"type": "text", "text": f"Project env: AWS_ACCESS_KEY_ID={v['aws']}"}],
        messages=[
            {"role": "user", "content": f"Why does stripe reject {v['stripe']}?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": f"echo {v['aws']}"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": f"STRIPE_KEY={v['stripe']}\nAWS={v['aws']}"}]},
        ],
    )


def chat_request(v: dict[str, str]) -> dict[str, Any]:
    args = json.dumps({"command": f"echo {v['aws']}"})
    return dict(
        model="gpt-4o",
        messages=[
            {"role": "system", "content": f"env AWS_ACCESS_KEY_ID={v['aws']}"},
            {"role": "user", "content": [{"type": "text", "text": f"Why does stripe reject {v['stripe']}?"}]},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "sh", "arguments": args}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": f"STRIPE_KEY={v['stripe']}"},
        ],
    )


def responses_request(v: dict[str, str]) -> dict[str, Any]:
    return dict(
        model="gpt-5.5-codex",
        instructions=f"env AWS_ACCESS_KEY_ID={v['aws']}",
        input=[
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"Why does stripe reject {v['stripe']}?"}]},
            {"type": "function_call", "call_id": "call_1", "name": "exec_command", "arguments": json.dumps({"cmd": f"echo {v['aws']}"})},
            {"type": "function_call_output", "call_id": "call_1", "output": f"STRIPE_KEY={v['stripe']}"},
        ],
        store=False,
    )


def clients(url: str, key: str) -> tuple[anthropic.Anthropic, openai.OpenAI]:
    headers = {"x-egress-key": key}
    return (
        anthropic.Anthropic(base_url=url, api_key="sk-ant-client", default_headers=headers, max_retries=0),
        openai.OpenAI(base_url=url + "/v1", api_key="sk-client", default_headers=headers, max_retries=0),
    )


def call(api: str, stream: bool, url: str, key: str, v: dict[str, str]) -> tuple[str, dict[str, Any]]:
    """(the answer's text, its tool call's arguments) as the SDK hands them to the application."""
    claude, oai = clients(url, key)
    if api == "anthropic":
        if stream:
            with claude.messages.stream(**anthropic_request(v)) as s:
                message = s.get_final_message()
        else:
            message = claude.messages.create(**anthropic_request(v))
        return message.content[0].text, message.content[1].input
    if api == "chat":
        if stream:
            text, args = "", ""
            for chunk in oai.chat.completions.create(stream=True, **chat_request(v)):
                for choice in chunk.choices:
                    text += choice.delta.content or ""
                    for tc in choice.delta.tool_calls or []:
                        args += tc.function.arguments or ""
            return text, json.loads(args)
        completion = oai.chat.completions.create(**chat_request(v))
        message = completion.choices[0].message
        return message.content, json.loads(message.tool_calls[0].function.arguments)
    if stream:
        with oai.responses.stream(**responses_request(v)) as s:
            response = s.get_final_response()
    else:
        response = oai.responses.create(**responses_request(v))
    return response.output_text, json.loads(response.output[1].arguments)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("api", ["anthropic", "chat", "responses"])
def test_canaries_never_leave_and_come_back_restored(gateway, upstream, api, stream):
    v = canaries()
    seen: list[Received] = []
    upstream.enqueue(scripted(api, stream, v, seen))
    text, args = call(api, stream, gateway.url, gateway.key, v)
    assert text == f"Your AWS key is {v['aws']} and Stripe uses {v['stripe']}."
    assert next(iter(args.values())) == f"deploy --key {v['aws']}"
    assert len(seen) == 1
    (record,) = gateway.audit(1)
    masked = record["masked"]
    assert masked["count"] >= 4 and {m["rule"] for m in masked["values"]} == {"aws-access-key-id", "stripe-live-secret-key"}
    assert all(m["hash"].startswith("blake2b:") and m["kind"] == "secret" for m in masked["values"])
    stored = json.dumps(record)
    for value in v.values():
        assert value not in stored
    assert not PLACEHOLDER.search(stored)


def test_count_tokens_bodies_are_masked_too(gateway, upstream):
    v = canaries()
    r = httpx.post(
        gateway.url + "/v1/messages/count_tokens",
        json={"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": f"key {v['aws']}"}]},
        headers={"x-egress-key": gateway.key},
    )
    assert r.status_code == 200
    assert v["aws"].encode() not in upstream.received[0].body and b"EGX_AWS_ACCESS_KEY_ID_" in upstream.received[0].body


# --- recorded provider streams: byte-exact --------------------------------------------------------

STREAM_FIXTURES = [str(p.relative_to(fixtures_dir())) for p in recorded_streams()]
_TEXT_LITERAL = re.compile(rb'"(text|content|delta|partial_json|arguments|refusal)"\s*:\s*"')


def plant(data: bytes, what: bytes, limit: int = 3) -> bytes:
    """`what` inserted at the start of the first few text literals of the recorded stream."""
    out, last, n = [], 0, 0
    for m in _TEXT_LITERAL.finditer(data):
        if n == limit:
            break
        out += [data[last : m.end()], what + b" "]
        last, n = m.end(), n + 1
    assert n, "the fixture has no text literal to plant in"
    return b"".join(out) + data[last:]


@pytest.mark.parametrize("fixture", STREAM_FIXTURES)
def test_recorded_streams_come_back_byte_exact(gateway, upstream, fixture):
    v = canaries()
    recorded = (fixtures_dir() / fixture).read_bytes()
    if not recorded.endswith(b"\n\n"):
        recorded = recorded.rstrip(b"\n") + b"\n\n"
    expected = plant(recorded, v["aws"].encode())  # what the provider sends if the model wrote the value

    def build(received: Received) -> list[bytes]:
        (placeholder,) = placeholders_in(received, {"aws": v["aws"]})
        return split_random(plant(recorded, placeholder.encode()), random.Random(7))

    upstream.enqueue(Reply(headers=SSE_HEADERS, build=build))
    family = fixture.split("/")[0]
    path, body = {
        "anthropic-messages": ("/v1/messages", {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": f"key: {v['aws']}"}]}),
        "openai-chat": ("/v1/chat/completions", {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": f"key: {v['aws']}"}]}),
        "openai-responses": ("/v1/responses", {"model": "gpt-5.5-codex", "stream": True, "input": f"key: {v['aws']}"}),
    }[family]
    with httpx.stream("POST", gateway.url + path, json=body, headers={"x-egress-key": gateway.key}) as r:
        got = b"".join(r.iter_raw())
    assert r.status_code == 200
    assert got == expected


# --- prompt caching across turns -------------------------------------------------------------------


def test_turn_two_starts_with_turn_ones_masked_prompt(gateway, upstream):
    v = canaries()
    upstream.enqueue(scripted("anthropic", False, {"aws": v["aws"], "stripe": v["stripe"]}, []))
    turn1 = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 100,
        "system": [{"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": f"AWS={v['aws']} STRIPE={v['stripe']}", "cache_control": {"type": "ephemeral"}}]}
        ],
    }
    raw1 = json.dumps(turn1, separators=(",", ":")).encode()
    r1 = httpx.post(gateway.url + "/v1/messages", content=raw1, headers={"x-egress-key": gateway.key, "content-type": "application/json"})
    reply = r1.json()
    assert reply["content"][0]["text"].startswith(f"Your AWS key is {v['aws']}")
    turn2 = dict(turn1, messages=[*turn1["messages"], {"role": "assistant", "content": reply["content"]}, {"role": "user", "content": "Thanks, now rotate it."}])
    upstream.enqueue(scripted("anthropic", False, {"aws": v["aws"], "stripe": v["stripe"]}, []))
    raw2 = json.dumps(turn2, separators=(",", ":")).encode()
    httpx.post(gateway.url + "/v1/messages", content=raw2, headers={"x-egress-key": gateway.key, "content-type": "application/json"})
    sent1, sent2 = upstream.received[0].body, upstream.received[1].body
    assert sent2.startswith(sent1[: sent1.rindex(b"]")])  # the whole of turn 1, byte for byte
    # and the reply went back exactly as the model (the simulator) wrote it
    p = by_kind(placeholders_in(upstream.received[0], v))
    assistant = json.loads(sent2)["messages"][1]["content"]
    assert assistant[0]["text"] == f"Your AWS key is {p['aws']} and Stripe uses {p['stripe']}."
    assert assistant[1]["input"] == {"command": f"deploy --key {p['aws']}"}


# --- stateful Responses sessions: the vault --------------------------------------------------------


def remembered_turn(gateway, upstream) -> tuple[dict[str, str], str, str]:
    """Turn 1 of a stateful Responses conversation as alice: a canary sent, the answer stored
    by the provider. Returns (canaries, the answer's response id, the placeholder the model saw)."""
    v = canaries()
    response_id = "resp_" + secrets.token_hex(8)
    seen: list[str] = []

    def turn1(received: Received) -> list[bytes]:
        seen.append(PLACEHOLDER.findall(received.body.decode())[0])
        return [responses_answer("Noted.", "true", response_id)]

    upstream.enqueue(Reply(headers=SSE_HEADERS, build=turn1))
    _, alice = clients(gateway.url, gateway.key)
    with alice.responses.stream(model="gpt-5.5-codex", input=f"remember {v['aws']}") as s:
        s.get_final_response()
    return v, response_id, seen[0]


def test_previous_response_id_restores_from_the_encrypted_vault(gateway, upstream, tmp_path: Path):
    v, response_id, placeholder = remembered_turn(gateway, upstream)

    def turn2(received: Received) -> list[bytes]:
        assert json.loads(received.body)["previous_response_id"] == response_id
        return [responses_answer(f"It was {placeholder}.", f"echo {placeholder}", "resp_2")]

    upstream.enqueue(Reply(headers=SSE_HEADERS, build=turn2))
    _, oai = clients(gateway.url, gateway.key)
    with oai.responses.stream(model="gpt-5.5-codex", input="what was it?", previous_response_id=response_id) as s:
        again = s.get_final_response()
    assert again.output_text == f"It was {v['aws']}."
    assert json.loads(again.output[1].arguments) == {"cmd": f"echo {v['aws']}"}
    # At rest: a sealed row, no value, no placeholder, not even the response id in clear.
    db = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("egress.db*"))
    assert v["aws"].encode() not in db and placeholder.encode() not in db and response_id.encode() not in db
    assert gateway.store.vault_get(gateway.gateway.app.pipeline.sessions.vault.entry_id(response_id, "alice")) is not None


def test_store_false_answers_are_not_kept(gateway, upstream):
    v = canaries()
    upstream.enqueue(Reply(headers=SSE_HEADERS, build=lambda r: [responses_answer("ok", "true", "resp_nostore")]))
    _, oai = clients(gateway.url, gateway.key)
    with oai.responses.stream(model="gpt-5.5-codex", input=f"remember {v['aws']}", store=False) as s:
        s.get_final_response()
    assert gateway.store.vault_get(gateway.gateway.app.pipeline.sessions.vault.entry_id("resp_nostore", "alice")) is None


def test_no_value_reaches_any_log_or_the_database(gateway, upstream, caplog, tmp_path: Path):
    caplog.set_level(logging.DEBUG)
    v = canaries()
    upstream.enqueue(scripted("anthropic", True, v, []))
    text, _ = call("anthropic", True, gateway.url, gateway.key, v)
    assert v["aws"] in text
    gateway.audit(1)
    # egress's own logs and its server's (the client SDK's debug log holds the request it sent).
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("egress", "uvicorn"))
    db = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("egress.db*"))
    for value in v.values():
        assert value not in logged and value.encode() not in db
    assert not PLACEHOLDER.search(logged) and not PLACEHOLDER.search(db.decode("latin-1"))


def test_another_user_cannot_continue_a_conversation_with_its_values_restored(gateway, upstream):
    """The provider accepts any response id of the organisation; egress restores a stored
    conversation's values only for the user who created it."""
    v, response_id, placeholder = remembered_turn(gateway, upstream)
    upstream.enqueue(Reply(headers=SSE_HEADERS, build=lambda r: [responses_answer(f"It was {placeholder}.", "true", "resp_b")]))
    bob_secret, bob_key = new_key("bob", "other-team")
    gateway.store.create_key(bob_key)
    time.sleep(0.5)  # the key ring refreshes every 0.2 s in the test config
    _, bob = clients(gateway.url, bob_secret)
    with bob.responses.stream(model="gpt-5.5-codex", input="what was it?", previous_response_id=response_id) as s:
        answer = s.get_final_response()
    assert v["aws"] not in answer.output_text and placeholder in answer.output_text



def test_after_compaction_a_value_only_a_context_rule_found_stays_masked(gateway, upstream):
    """Claude Code compacts: the summary the model wrote (restored on its way back) replaces the
    file read where the password was found; no rule fires on the summary, yet it never leaves."""
    # Random, but always with an upper- and lower-case letter and a digit: the shape of a generated
    # password, which the context rule is for (a 20-letter word-like value may be prose).
    password = "Q7k" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(17))
    session = {"x-egress-key": gateway.key, "x-claude-code-session-id": "sess-" + secrets.token_hex(4)}
    turn1 = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": f"APP_ENV=prod\nLOG_LEVEL=info\nDB_PASSWORD={password}\n"}],
    }
    r1 = httpx.post(gateway.url + "/v1/messages", json=turn1, headers=session)
    assert r1.status_code == 200 and password.encode() not in upstream.received[-1].body
    summary = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": f"Summary: the database credential {password} now lives in CI."}],
    }
    httpx.post(gateway.url + "/v1/messages", json=summary, headers=session)
    assert password.encode() not in upstream.received[-1].body
    # A different session has no such memory (and no detector fires): documented behaviour.
    other = {**session, "x-claude-code-session-id": "sess-other"}
    httpx.post(gateway.url + "/v1/messages", json=summary, headers=other)
    assert password.encode() in upstream.received[-1].body
