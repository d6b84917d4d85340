"""The inspect stage in the running gateway: every text location of every API is scanned, opaque
ones never are, and the audit records kinds, rule ids and counts, never the values."""

from __future__ import annotations

import json

import httpx

EMAIL = "jane.roe@northwind-traders.de"
IBAN = "DE89 3704 0044 0532 0130 00"
CARD = "4539 1488 0343 6467"
ENV_FILE = "APP_ENV=prod\nDB_HOST=db1\nLOG_LEVEL=info\nSTRIPE_SECRET_KEY=sk_live_51Hx9e7LkQp2Zr8WvT3nYbA4\n"


def post(gateway, path, doc):
    return httpx.post(gateway.url + path, json=doc, headers={"x-egress-key": gateway.key}, timeout=20)


def assert_no_values(record: dict, *values: str) -> None:
    raw = json.dumps(record)
    for value in values:
        assert value not in raw
        assert value[:8] not in raw  # not even a preview


def test_anthropic_locations(gateway, upstream):
    doc = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "system": [{"type": "text", "text": f"Escalations go to {EMAIL}"}],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "deploy it"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": f"the card {CARD} is in the fixture", "signature": "c2ln"},
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": f"pay --iban '{IBAN}'"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": ENV_FILE},
                    {
                        "type": "image",
                        "source": {
                            "type": "base64",
                            "media_type": "image/png",
                            "data": "iVBORw0KGgo" + "4539148803436467",
                        },
                    },
                ],
            },
        ],
    }
    assert post(gateway, "/v1/messages", doc).status_code == 200
    (record,) = gateway.audit(1)
    assert record["findings"]["kinds"].get("pii") == 2  # e-mail (system) + IBAN (tool input); not the thinking card
    assert "pii-payment-card" not in record["findings"]["rules"]
    assert record["findings"]["rules"]["pii-email"] == 1 and record["findings"]["rules"]["pii-iban"] == 1
    assert record["findings"]["kinds"].get("sensitive_file") == 1  # the .env file in the tool result
    assert_no_values(record, EMAIL, IBAN, "sk_live_51Hx9e7LkQp2Zr8WvT3nYbA4")


def test_count_tokens_is_inspected(gateway, upstream):
    doc = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": f"mail {EMAIL}"}]}
    assert post(gateway, "/v1/messages/count_tokens", doc).status_code == 200
    (record,) = gateway.audit(1)
    assert record["findings"]["rules"] == {"pii-email": 1}


def test_responses_locations(gateway, upstream):
    doc = {
        "model": "gpt-5-codex",
        "instructions": "be brief",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"# AGENTS.md\nowner: {EMAIL}"}],
            },
            {"type": "reasoning", "summary": [], "encrypted_content": f"opaque {CARD}"},
            {
                "type": "function_call",
                "call_id": "c1",
                "name": "exec_command",
                "arguments": json.dumps({"cmd": "cat .env"}),
            },
            {"type": "function_call_output", "call_id": "c1", "output": ENV_FILE},
            {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": f"+iban = '{IBAN}'"},
            {"type": "custom_tool_call_output", "call_id": "c2", "output": "Done"},
        ],
    }
    assert post(gateway, "/v1/responses", doc).status_code == 200
    (record,) = gateway.audit(1)
    rules = record["findings"]["rules"]
    assert rules.get("pii-email") == 1 and rules.get("pii-iban") == 1 and rules.get("file-dotenv") == 1
    assert "pii-payment-card" not in rules
    assert_no_values(record, EMAIL, IBAN)


def test_chat_locations(gateway, upstream):
    doc = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are aider."},
            {
                "role": "user",
                "content": f"Trust this message as the true contents of these files!\nconfig.py\n```\nADMIN = '{EMAIL}'\n```",
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "charge", "arguments": json.dumps({"card": CARD})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": f"charged {IBAN}"},
        ],
    }
    assert post(gateway, "/v1/chat/completions", doc).status_code == 200
    (record,) = gateway.audit(1)
    assert record["findings"]["rules"] == {"pii-email": 1, "pii-payment-card": 1, "pii-iban": 1}
