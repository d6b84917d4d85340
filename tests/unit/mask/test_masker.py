"""The mask stage on real request bodies of the three APIs.

Invariants under test: values never survive in any text location; everything outside the masked
spots is byte-identical; placeholders are deterministic per tenant; `mask(restore(x)) == x` for
any model output x; the prompt prefix of turn 2 is byte-identical to turn 1's; signed thinking is
never rewritten (a request that would need it is refused)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.errors import EgressError
from egress.core.exchange import Api
from egress.mask.masker import Masker
from egress.mask.placeholders import PATTERN, MaskingKeys, Placeholders, json_escape, label_for
from egress.mask.restore import Restorer
from tests.support.masking import PLACEHOLDERS, mask_request

AWS = "AKIAZ3MEXAMPLEQ7XK2F"
PASSWORD = 'hunter2"\\ü\n-pw'
PLANTED = {AWS: "aws-access-key-id", PASSWORD: "generic-password"}


def body(doc: dict) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()


def anthropic_doc(secret_text: str) -> dict:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.3.abc; cc_entrypoint=cli;"},
            {"type": "text", "text": f"You are an agent. env: {secret_text}", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": f"deploy with {secret_text}"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "plan it", "signature": "c2lnbmVk"},
                    {"type": "text", "text": "Reading the file."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Read",
                        "input": {"file_path": "/app/.env", "note": secret_text},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": f"KEY={secret_text}\n"}],
                    },
                    {"type": "text", "text": "thanks", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
    }


def test_anthropic_every_text_location_is_masked_and_the_rest_is_byte_identical():
    raw = body(anthropic_doc(AWS + " and " + PASSWORD))
    masked = mask_request(Api.ANTHROPIC_MESSAGES, raw, PLANTED)
    assert AWS.encode() not in masked.body and json_escape(PASSWORD) not in masked.body
    assert masked.masked_count == 8 and not masked.rewritten  # 4 locations x 2 values
    assert set(masked.placeholders.values()) == {AWS, PASSWORD}
    # Replacing the placeholders back gives the client's bytes exactly: nothing else moved.
    back = masked.body
    for placeholder, value in masked.placeholders.items():
        back = back.replace(placeholder.encode(), json_escape(value))
    assert back == raw
    doc = json.loads(masked.body)
    assert doc["system"][0]["text"].startswith("x-anthropic-billing-header")  # attribution untouched
    assert doc["messages"][1]["content"][0] == {"type": "thinking", "thinking": "plan it", "signature": "c2lnbmVk"}
    assert doc["system"][1]["cache_control"] == {"type": "ephemeral"}
    labels = sorted(p.rsplit("_", 1)[0] for p in masked.placeholders)
    assert labels == ["EGX_AWS_ACCESS_KEY_ID", "EGX_GENERIC_PASSWORD"]


def test_placeholders_are_deterministic_per_tenant_and_differ_across_tenants():
    raw = body(anthropic_doc(AWS))
    first = mask_request(Api.ANTHROPIC_MESSAGES, raw, PLANTED)
    again = mask_request(Api.ANTHROPIC_MESSAGES, raw, PLANTED, Masker(PLACEHOLDERS))
    other = mask_request(Api.ANTHROPIC_MESSAGES, raw, PLANTED, Masker(Placeholders(MaskingKeys.derive(b"\x08" * 32))))
    assert first.body == again.body
    assert first.placeholders.keys() != other.placeholders.keys()
    for placeholder in first.placeholders:
        assert PATTERN.fullmatch(placeholder.encode()) and placeholder.isidentifier() and placeholder.isascii()


def test_chat_and_responses_tool_arguments_hold_json_text():
    args = json.dumps({"cmd": f"export PW={PASSWORD}; aws --key {AWS}"})
    chat = {
        "model": "gpt-5",
        "messages": [
            {"role": "system", "content": f"ctx {AWS}"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": args}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": f"PW={PASSWORD}"},
        ],
    }
    masked = mask_request(Api.OPENAI_CHAT, body(chat), PLANTED)
    doc = json.loads(masked.body)
    inner = json.loads(doc["messages"][1]["tool_calls"][0]["function"]["arguments"])  # still valid JSON
    assert AWS not in inner["cmd"] and PASSWORD not in inner["cmd"]
    assert PASSWORD not in doc["messages"][2]["content"] and AWS not in doc["messages"][0]["content"]
    responses = {
        "model": "gpt-5",
        "instructions": f"ctx {AWS}",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": f"use {PASSWORD}"}]},
            {"type": "function_call", "call_id": "c1", "name": "exec_command", "arguments": args},
            {"type": "function_call_output", "call_id": "c1", "output": f"{AWS}\n"},
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA" + AWS},
        ],
    }
    masked = mask_request(Api.OPENAI_RESPONSES, body(responses), PLANTED)
    doc = json.loads(masked.body)
    assert json.loads(doc["input"][1]["arguments"])["cmd"].count("EGX_") == 2
    assert AWS not in doc["instructions"] and AWS not in doc["input"][2]["output"]
    assert doc["input"][3]["encrypted_content"] == "gAAAA" + AWS  # opaque: never rewritten


def test_a_value_inside_signed_thinking_refuses_the_request():
    doc = anthropic_doc(AWS)
    doc["messages"][1]["content"][0]["thinking"] = f"the key {AWS} looks valid"
    with pytest.raises(EgressError) as err:
        mask_request(Api.ANTHROPIC_MESSAGES, body(doc), PLANTED)
    assert err.value.code.value == "policy_denied" and "signed thinking" in err.value.message


def test_a_client_escaping_the_byte_search_cannot_see_falls_back_to_an_exact_rewrite():
    # Written with \\u escapes for every non-ASCII character (Python's json default): the value's
    # bytes do not occur as such, so the body is rebuilt from the parsed document instead.
    value = "s3cr\u00e9t-\u00fcberkey-123456"
    raw = json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": f"k={value}"}]}).encode()
    assert value.encode() not in raw
    masked = mask_request(Api.OPENAI_CHAT, raw, {value: "generic-password"})
    assert masked.rewritten and value not in json.loads(masked.body)["messages"][0]["content"]


# --- round trip: mask(restore(x)) == x ----------------------------------------------------------

model_piece = st.one_of(
    st.just("<P0>"),
    st.just("<P1>"),
    st.text(alphabet="abc XYZ_-.:/=\n\"'\\{}\u00e9\u4e2d", max_size=8),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(model_piece, max_size=10), st.sampled_from(["text", "tool"]))
def test_masking_the_restored_reply_gives_back_exactly_what_the_model_wrote(pieces, where):
    turn1 = anthropic_doc(AWS + " " + PASSWORD)
    first = mask_request(Api.ANTHROPIC_MESSAGES, body(turn1), PLANTED)
    by_value = {v: p for p, v in first.placeholders.items()}
    model_text = "".join(by_value[AWS] if p == "<P0>" else by_value[PASSWORD] if p == "<P1>" else p for p in pieces)
    # What the client keeps: the reply as the restorer gave it.
    if where == "text":
        reply = {"role": "assistant", "content": [{"type": "text", "text": model_text}]}
    else:
        reply = {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "t9", "name": "Bash", "input": {"command": model_text}}],
        }
    restored = json.loads(
        Restorer().body(Api.ANTHROPIC_MESSAGES, first.placeholders, json.dumps({"content": reply["content"]}).encode())
    )
    turn2 = dict(
        turn1,
        messages=[
            *turn1["messages"],
            {"role": "assistant", "content": restored["content"]},
            {"role": "user", "content": "go on"},
        ],
    )
    second = mask_request(Api.ANTHROPIC_MESSAGES, body(turn2), PLANTED)
    sent = json.loads(second.body)["messages"][-2]["content"][0]
    assert (sent["text"] if where == "text" else sent["input"]["command"]) == model_text


def test_turn_two_keeps_turn_ones_masked_prefix_byte_for_byte():
    """Prompt caching: turn 2 = turn 1 + the restored reply + a new message."""
    turn1 = anthropic_doc(AWS)
    first = mask_request(Api.ANTHROPIC_MESSAGES, body(turn1), PLANTED)
    (placeholder,) = first.placeholders
    reply = json.loads(
        Restorer().body(
            Api.ANTHROPIC_MESSAGES,
            first.placeholders,
            json.dumps({"content": [{"type": "text", "text": f"Set {placeholder} in CI."}]}).encode(),
        )
    )
    turn2 = dict(
        turn1,
        messages=[
            *turn1["messages"],
            {"role": "assistant", "content": reply["content"]},
            {"role": "user", "content": f"and {AWS}?"},
        ],
    )
    second = mask_request(Api.ANTHROPIC_MESSAGES, body(turn2), PLANTED)
    prefix = first.body[: first.body.rindex(b"]")]  # everything up to the end of turn 1's messages
    assert second.body.startswith(prefix)
    assert second.body[len(prefix) :].startswith(
        b',{"role":"assistant","content":[{"type":"text","text":"Set ' + placeholder.encode()
    )


def test_every_occurrence_is_masked_even_where_no_detector_fired():
    doc = {
        "model": "gpt-5",
        "messages": [{"role": "user", "content": f"AWS_KEY={AWS}"}, {"role": "user", "content": f"again: {AWS}!"}],
    }
    raw = body(doc)
    parsed_findings_only_first = {AWS: "aws-access-key-id"}
    masked = mask_request(Api.OPENAI_CHAT, raw, parsed_findings_only_first)
    assert AWS.encode() not in masked.body and masked.masked_count == 2


def test_labels_keep_the_kind_readable():
    assert label_for("aws-access-key-id") == "AWS_ACCESS_KEY_ID"
    assert label_for("--") == "SECRET"
    assert re.fullmatch(r"[A-Z0-9_]+", label_for("stripe.live-key (v2)"))


# --- random values, random places -------------------------------------------------------------

value_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=8, max_size=24).filter(
    lambda v: "EGX_" not in v and v.strip() == v and len(set(v)) > 3
)
filler = st.text(alphabet='abc XYZ\n\t"\\/<>&\u00e9\u4e2d:=', max_size=12)


@settings(max_examples=150, deadline=None)
@given(st.lists(value_text, min_size=1, max_size=3, unique=True), st.lists(filler, min_size=4, max_size=4), st.data())
def test_random_values_never_leave_and_round_trip_through_any_location(values, fill, data):
    # Values planted at random places of a Chat request: a message, a tool call's JSON arguments,
    # a tool result; the arguments written by Python's json (\u escapes) or compactly.
    ensure_ascii = data.draw(st.booleans())
    picks = [data.draw(st.sampled_from(values)) for _ in range(3)]
    args = json.dumps({"cmd": f"{fill[0]}{picks[1]}{fill[1]}"}, ensure_ascii=ensure_ascii)
    doc = {
        "model": "gpt-5",
        "messages": [
            {"role": "user", "content": f"{fill[2]}{picks[0]}{fill[3]}"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "sh", "arguments": args}}],
            },
            {"role": "tool", "tool_call_id": "c1", "content": picks[2]},
        ],
    }
    raw = json.dumps(doc, ensure_ascii=ensure_ascii).encode()
    planted = {v: "generic-password" for v in values}
    masked = mask_request(Api.OPENAI_CHAT, raw, planted)
    sent = json.loads(masked.body)
    texts = [
        sent["messages"][0]["content"],
        json.loads(sent["messages"][1]["tool_calls"][0]["function"]["arguments"])["cmd"],
        sent["messages"][2]["content"],
    ]
    for value in values:
        assert all(value not in t for t in texts)
    # The model echoes what it saw; restored, then masked again, it is what the model wrote.
    reply = json.dumps(
        {
            "choices": [
                {
                    "message": {
                        "content": texts[0],
                        "tool_calls": [
                            {"function": {"arguments": sent["messages"][1]["tool_calls"][0]["function"]["arguments"]}}
                        ],
                    }
                }
            ]
        }
    ).encode()
    restored = json.loads(Restorer().body(Api.OPENAI_CHAT, masked.placeholders, reply))["choices"][0]["message"]
    assert restored["content"] == doc["messages"][0]["content"]
    assert json.loads(restored["tool_calls"][0]["function"]["arguments"]) == json.loads(args)
    again = dict(doc, messages=[*doc["messages"], {"role": "assistant", "content": restored["content"]}])
    remasked = json.loads(
        mask_request(Api.OPENAI_CHAT, json.dumps(again, ensure_ascii=ensure_ascii).encode(), planted).body
    )
    assert remasked["messages"][-1]["content"] == texts[0]
