"""Record what the real self-hosted model server sends, byte for byte, into this folder.

    .venv/bin/python -m tests.corpus.selfhosted.record

Starts the server as the tests do (tests/support/selfhosted.py), sends each case below once with
httpx, and writes the raw response body to NAME.sse (event streams) or NAME.json, plus cases.json:
per case the request, the status, the content type and the timings. Greedy sampling
(temperature 0) and short max_tokens keep it fast and the text stable for one build.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support import selfhosted

HERE = Path(__file__).resolve().parent

# A Claude-Code-shaped request, made small: a system prompt, one tool, one user turn.
SYSTEM = "You are Claude Code, a CLI coding assistant. Answer in one short sentence."
BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "Bash",
        "description": "Run a shell command and return its output.",
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "string", "description": "The command to run"}},
            "required": ["command"],
        },
    },
}
HELLO = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Say hello to the user."}]
LIST_FILES = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "List the files in this folder."}]
# Turn 2 of a tool loop. The server's request model rejects the assistant's `content: null` that
# OpenAI accepts; TOOL_TURN_NULL keeps it, to record that error.
TOOL_TURN = [
    *LIST_FILES,
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": "README.md\nsetup.py"},
]
TOOL_TURN_NULL = [*TOOL_TURN[:2], {**TOOL_TURN[2], "content": None}, TOOL_TURN[3]]
STREAM = {"stream": True, "stream_options": {"include_usage": True}}
FORCE_BASH = {"type": "function", "function": {"name": "Bash"}}
# A delta that carries text: the first one marks the first token a client can show.
VARYING_HEADERS = {"date", "x-request-id", "openai-processing-ms", "content-length"}
TEXT_DELTA = re.compile(rb'"(content|arguments)": ?"[^"]')


def cases(model: str) -> dict[str, dict[str, Any]]:
    """Name -> request body; a name ending in -stream is recorded as .sse."""
    base = {"model": model, "temperature": 0, "max_tokens": 24}
    tools = {"tools": [BASH_TOOL]}
    return {
        "chat-stream": {**base, "messages": HELLO, **STREAM},
        "chat": {**base, "messages": HELLO},
        "chat-other-model-name": {**base, "model": "claude-sonnet-4-5", "messages": HELLO},
        "chat-max-tokens-1-stream": {**base, "max_tokens": 1, "messages": HELLO, **STREAM},
        "tools-auto-stream": {**base, "messages": LIST_FILES, **tools, "tool_choice": "auto", **STREAM},
        "tools-auto": {**base, "messages": LIST_FILES, **tools, "tool_choice": "auto"},
        "tools-required": {**base, "messages": LIST_FILES, **tools, "tool_choice": "required"},
        "tools-forced-stream": {**base, "messages": LIST_FILES, **tools, "tool_choice": FORCE_BASH, **STREAM},
        "tools-forced": {**base, "messages": LIST_FILES, **tools, "tool_choice": FORCE_BASH},
        "tool-result-turn": {**base, "messages": TOOL_TURN, **tools},
        "error-tool-call-null-content": {**base, "messages": TOOL_TURN_NULL, **tools},
        "content-parts": {**base, "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}]},
        "error-logprobs": {**base, "messages": HELLO, "logprobs": True, "top_logprobs": 2},
        "error-context-overflow": {**base, "messages": [{"role": "user", "content": "hello " * 5000}]},
        "error-context-overflow-stream": {**base, "messages": [{"role": "user", "content": "hello " * 5000}], **STREAM},
        "error-bad-request": {**base, "messages": [{"role": "robot", "content": "hi"}]},
    }


def abridged(value: Any) -> Any:
    """The request as cases.json shows it: long strings (the overflow prompts) cut short."""
    if isinstance(value, str) and len(value) > 200:
        return f"{value[:30]}... ({len(value)} characters)"
    if isinstance(value, dict):
        return {key: abridged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [abridged(item) for item in value]
    return value


def record(base_url: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST one case on a new connection and write its raw body; return what cases.json says.

    A new connection each time: after a stream fails the server resets the one it came on."""
    began = time.monotonic()
    first_byte_s: float | None = None
    first_text_s: float | None = None
    raw = bytearray()
    with (
        httpx.Client(base_url=base_url, timeout=120.0) as client,
        client.stream("POST", "/chat/completions", json=body) as response,
    ):
        for piece in response.iter_raw():
            if first_byte_s is None:
                first_byte_s = time.monotonic() - began
            raw.extend(piece)
            if first_text_s is None and TEXT_DELTA.search(raw):
                first_text_s = time.monotonic() - began
        status, content_type = response.status_code, response.headers.get("content-type", "")
        headers = {k: v for k, v in response.headers.items() if k not in VARYING_HEADERS}
    total_s = time.monotonic() - began
    suffix = ".sse" if content_type.startswith("text/event-stream") else ".json"
    (HERE / (name + suffix)).write_bytes(bytes(raw))
    return {
        "file": name + suffix,
        "request": abridged(body),
        "status": status,
        "content_type": content_type,
        "headers": headers,
        "first_byte_s": round(first_byte_s or total_s, 3),
        "first_text_s": None if first_text_s is None else round(first_text_s, 3),
        "total_s": round(total_s, 3),
    }


def main() -> None:
    for old in [*HERE.glob("*.sse"), *HERE.glob("*.json")]:
        old.unlink()
    with tempfile.TemporaryDirectory() as scratch, selfhosted.running(Path(scratch)) as server:
        index: dict[str, Any] = {
            "server_start_s": round(server.start_s, 3),
            "model": server.model,
            # The timings below are only as good as the machine was quiet: its 1-minute load, at start.
            "load_average": round(os.getloadavg()[0], 2),
            "cases": {},
        }
        for name, body in cases(server.model).items():
            index["cases"][name] = entry = record(server.base_url, name, body)
            print(f"{name}: {entry['status']} {entry['content_type']} first byte {entry['first_byte_s']} s")
    # cases.json is the index, written last so it is never mistaken for a recorded body above.
    (HERE / "cases.json").write_text(json.dumps(index, indent=2) + "\n")


if __name__ == "__main__":
    main()
