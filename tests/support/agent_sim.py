"""A scripted model for the agent tests, over OpenAI Chat Completions (the API that aider, Continue,
Cline, OpenCode and Mistral Vibe speak): it asks the agent to read the project's `config/.env`
with the agent's own file tool, then answers by quoting the lines it was sent.

    turn 1: the request offers the agent's read tool -> a tool call reading config/.env
    turn 2: the request carries that tool's result   -> an answer quoting every line that holds a
            placeholder (the model can only quote what it saw: egress's placeholders)
    other:  a side request (a title, a summary)        -> a short plain answer

aider has no file tool: it sends the files named on its command line inside the prompt. For it
the model answers the first request that carries the file, quoting it (`read_tool=None`).

The model only takes notes; the tests assert on them after the run (an assertion raised in the
simulator would reach the agent as a 500, not as a readable test failure).
"""

from __future__ import annotations

import json
import random
import re
import secrets
import socket
import string
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.simulator import Received, Reply, UpstreamSimulator, split_random

PLACEHOLDER = re.compile(r"EGX_[A-Z0-9_]+_[a-z]{13}")
# `NAME=value` as it appears inside whatever frame a tool puts around a file's line (line numbers,
# a `|`, a tab): the assignment itself is what the model quotes.
_ASSIGNMENT = re.compile(r"[A-Z][A-Z0-9_]*=\S+")
SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
JSON_HEADERS = {"content-type": "application/json"}
ANSWER_INTRO = "I read config/.env; it holds these credentials:"

_ALNUM = string.ascii_letters + string.digits


def _random(alphabet: str, n: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class EnvFile:
    """`config/.env` in a scratch project: an AWS key pair, a Stripe live key and a database
    password (inside a PostgreSQL URL), fresh for every test, beside ordinary settings."""

    path: Path
    secrets: dict[str, str]  # what must never leave: a name for the message -> the secret value
    lines: dict[str, str]  # variable -> its whole line, as the user must get it back

    @classmethod
    def write(cls, project: Path) -> EnvFile:
        aws_id = "AKIA" + _random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)
        aws_secret = _random(_ALNUM + "/+", 40)
        stripe = "sk_live_" + _random(_ALNUM, 24)
        db_password = _random(_ALNUM, 20)
        values = {
            "AWS_ACCESS_KEY_ID": aws_id,
            "AWS_SECRET_ACCESS_KEY": aws_secret,
            "STRIPE_SECRET_KEY": stripe,
            "DATABASE_URL": f"postgres://billing:{db_password}@db.internal:5432/billing",
        }
        text = "\n".join(
            [
                "# billing service settings",
                "APP_NAME=billing",
                *[f"{name}={value}" for name, value in values.items()],
                "LOG_LEVEL=info",
            ]
        )
        path = project / "config" / ".env"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
        return cls(
            path,
            {
                "aws access key": aws_id,
                "aws secret key": aws_secret,
                "stripe live key": stripe,
                "db password": db_password,
            },
            {name: f"{name}={value}" for name, value in values.items()},
        )

    def leaked(self, data: bytes | str) -> list[str]:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        return [name for name, value in self.secrets.items() if value in text]


def quoted_assignments(text: str) -> list[str]:
    """The `NAME=value` assignments of the lines that hold a placeholder, in order, once each."""
    found: list[str] = []
    for line in text.splitlines():
        if PLACEHOLDER.search(line):
            match = _ASSIGNMENT.search(line)
            if match and match.group(0) not in found:
                found.append(match.group(0))
    return found


def answer_text(assignments: list[str]) -> str:
    return ANSWER_INTRO + "\n" + "\n".join(f"- {a}" for a in assignments) + "\n"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def unwrapped(tool_output: str) -> str:
    """A tool result's text. Some agents send the file inside a JSON document (Vibe:
    `{"content": ...}`, Cline: `[{"query": path, "result": ...}]`): its strings, one a line."""
    try:
        doc = json.loads(tool_output)
    except ValueError:
        return tool_output
    return "\n".join(_strings(doc))


def text_of(content: Any) -> str:
    """A message's text: a string, or a list of parts with text."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


# --- Chat Completions answers ---------------------------------------------------------------------


def _chunk(base: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    doc = {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


_USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}


def chat_stream(
    model: str, text: str | None, call: tuple[str, str, dict[str, Any]] | None, mistral: bool = False
) -> bytes:
    """A streamed Chat Completions answer: text in small deltas (every placeholder spans several),
    or one tool call; then the usage and [DONE].

    OpenAI streams a tool call's arguments in pieces after a first delta with its id and name, and
    sends the usage in a last chunk without choices (`stream_options.include_usage`). Mistral's
    chat API sends each tool call whole in one delta (its SDK requires the name in every tool-call
    delta) and puts the usage on the chunk that carries the finish reason."""
    base = {"id": "chatcmpl-e2e" + secrets.token_hex(6), "object": "chat.completion.chunk", "created": 1764138000}
    base["model"] = model
    out = [_chunk(base, {"role": "assistant", "content": ""})]
    if call is None:
        out += [_chunk(base, {"content": part}) for part in _pieces(text or "", 5)]
        finish = "stop"
    else:
        call_id, name, args = call
        arguments = json.dumps(args)
        if mistral:
            whole = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
            out.append(_chunk(base, {"tool_calls": [whole]}))
        else:
            first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
            out.append(_chunk(base, {"tool_calls": [first]}))
            out += [
                _chunk(base, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                for part in _pieces(arguments, 7)
            ]
        finish = "tool_calls"
    if mistral:
        end = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}], "usage": _USAGE}
        out.append(b"data: " + json.dumps(end, separators=(",", ":")).encode() + b"\n\n")
    else:
        out.append(_chunk(base, {}, finish))
        usage = {**base, "choices": [], "usage": _USAGE}
        out.append(b"data: " + json.dumps(usage, separators=(",", ":")).encode() + b"\n\n")
    out.append(b"data: [DONE]\n\n")
    return b"".join(out)


def chat_message(model: str, text: str | None, call: tuple[str, str, dict[str, Any]] | None) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if call is not None:
        call_id, name, args = call
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
        ]
    doc = {
        "id": "chatcmpl-e2e" + secrets.token_hex(6),
        "object": "chat.completion",
        "created": 1764138000,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls" if call else "stop"}
        ],
        "usage": _USAGE,
    }
    return json.dumps(doc).encode()


# --- Responses answers (Continue's CLI speaks it for gpt-5 and o-series models) -------------------


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _responses_item(text: str | None, call: tuple[str, str, dict[str, Any]] | None) -> dict[str, Any]:
    if call is None:
        content = [{"type": "output_text", "text": text or "", "annotations": []}]
        return {"id": "msg_e2e" + secrets.token_hex(6), "type": "message", "role": "assistant", "content": content}
    call_id, name, args = call
    item = {"id": "fc_e2e" + secrets.token_hex(6), "type": "function_call", "call_id": call_id, "name": name}
    return {**item, "arguments": json.dumps(args)}


_RESPONSES_USAGE = {
    "input_tokens": 100,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 20,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 120,
}


def _response(model: str, status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
    doc = {"id": "resp_e2e" + secrets.token_hex(6), "object": "response", "created_at": 1764138000}
    doc.update({"model": model, "status": status, "output": output})
    if status == "completed":
        doc["usage"] = _RESPONSES_USAGE
    return doc


def responses_stream(model: str, text: str | None, call: tuple[str, str, dict[str, Any]] | None) -> bytes:
    """A streamed Responses answer: one output item (a message whose text arrives in small
    deltas, or a function call whose arguments do), then response.completed."""
    item = {**_responses_item(text, call), "status": "completed"}
    started = {**item, "status": "in_progress"}
    where: dict[str, Any] = {"item_id": item["id"], "output_index": 0}
    if call is None:
        started["content"] = []
        where["content_index"] = 0
        part = {"type": "output_text", "text": "", "annotations": []}
        deltas = [
            ("response.content_part.added", {**where, "part": part}),
            *[("response.output_text.delta", {**where, "delta": piece}) for piece in _pieces(text or "", 5)],
            ("response.output_text.done", {**where, "text": text or ""}),
        ]
        done = ("response.content_part.done", {**where, "part": {**part, "text": text or ""}})
    else:
        started["arguments"] = ""
        args = item["arguments"]
        deltas = [("response.function_call_arguments.delta", {**where, "delta": p}) for p in _pieces(args, 7)]
        done = ("response.function_call_arguments.done", {**where, "arguments": args})
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": _response(model, "in_progress", [])}),
        ("response.output_item.added", {"output_index": 0, "item": started}),
        *deltas,
        done,
        ("response.output_item.done", {"output_index": 0, "item": item}),
        ("response.completed", {"response": _response(model, "completed", [item])}),
    ]
    return b"".join(_sse(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(events))


def responses_message(model: str, text: str | None, call: tuple[str, str, dict[str, Any]] | None) -> bytes:
    return json.dumps(_response(model, "completed", [{**_responses_item(text, call), "status": "completed"}])).encode()


# --- the scripted model ---------------------------------------------------------------------------


@dataclass
class ChatModel:
    """Plays the model over Chat Completions (or Responses, for a request posted there).
    `read_tool` is the agent's file tool and `read_args` the arguments that read config/.env with
    it; None: the file comes in the prompt."""

    read_tool: str | None
    read_args: dict[str, Any]
    side_text: str = "Checking the settings."
    mistral: bool = False  # answer in Mistral's flavour of the chat stream (see chat_stream)
    call_id: str = field(default_factory=lambda: "call_e2e" + secrets.token_hex(8))
    turns: list[str] = field(default_factory=list)  # "read" | "answer" | "side", in request order
    tool_output: list[str] = field(default_factory=list)  # the file as the model saw it
    answered: list[str] = field(default_factory=list)  # the text it wrote back (placeholders)
    tools_offered: list[list[str]] = field(default_factory=list)  # tool names of each request
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self, upstream: UpstreamSimulator, replies: int = 10) -> None:
        """Queue `replies` answers, each reading its request to decide what to say."""
        for _ in range(replies):
            reply = Reply(headers=dict(SSE_HEADERS), delay_s=0.002)
            reply.build = self._builder(reply)
            upstream.enqueue(reply)

    def _builder(self, reply: Reply) -> Any:
        def build(received: Received) -> list[bytes]:
            body = received.json()
            stream = bool(body.get("stream"))
            # The answer's content type follows the request (the simulator reads the reply's
            # headers after calling build).
            reply.headers = dict(SSE_HEADERS if stream else JSON_HEADERS)
            text, call = self.decide(body)
            model = str(body.get("model", "sim"))
            if received.path.endswith("/responses"):
                wire = responses_stream(model, text, call) if stream else responses_message(model, text, call)
            else:
                wire = chat_stream(model, text, call, self.mistral) if stream else chat_message(model, text, call)
            if not stream:
                return [wire]
            return split_random(wire, random.Random(len(received.body)), max_pieces=60)

        return build

    def decide(self, body: dict[str, Any]) -> tuple[str | None, tuple[str, str, dict[str, Any]] | None]:
        """The next answer: a text, or a call of the read tool."""
        # Chat Completions: `messages`, tool results as role "tool"; Responses: `input` items,
        # tool results as function_call_output.
        turns = [m for m in (body.get("messages") or body.get("input") or []) if isinstance(m, dict)]
        if isinstance(body.get("input"), str):
            turns = [{"role": "user", "content": body["input"]}]
        tools = [
            str((t.get("function") or {}).get("name") or t.get("name"))
            for t in body.get("tools", []) or []
            if isinstance(t, dict)
        ]
        results = [
            text_of(m.get("content")) if m.get("role") == "tool" else text_of(m.get("output"))
            for m in turns
            if (m.get("role") == "tool" and m.get("tool_call_id") == self.call_id)
            or (m.get("type") == "function_call_output" and m.get("call_id") == self.call_id)
        ]
        with self.lock:
            self.tools_offered.append(tools)
            if self.read_tool is None:
                prompt = "\n".join(text_of(m.get("content")) for m in turns if m.get("role") == "user")
                if "answer" not in self.turns and PLACEHOLDER.search(prompt):
                    return self._answer(prompt), None
            else:
                if results and "answer" not in self.turns:
                    return self._answer(results[0]), None
                if self.read_tool in tools and "read" not in self.turns:
                    self.turns.append("read")
                    return None, (self.call_id, self.read_tool, self.read_args)
            self.turns.append("side")
            return self.side_text, None

    def _answer(self, seen: str) -> str:
        text = answer_text(quoted_assignments(unwrapped(seen)))
        self.turns.append("answer")
        self.tool_output.append(seen)
        self.answered.append(text)
        return text


# --- what an agent tries to reach besides egress --------------------------------------------------


class OutboundTrap:
    """A loopback HTTP proxy that forwards nothing: set as HTTP(S)_PROXY (with NO_PROXY covering
    loopback) it records every connection an agent tries to open to anywhere but egress:
    telemetry, update checks, model catalogues. Clients that honour the proxy variables (Python's
    requests and httpx, Bun) show up here; Node's own fetch ignores them."""

    def __init__(self) -> None:
        self.attempts: list[str] = []  # each connection's request line (CONNECT host:443 ...)
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="outbound-trap", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {"NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1"}
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = self.url
        return env

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    first = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                except OSError:
                    first = "(no request line)"
                with self._lock:
                    self.attempts.append(first)
                try:
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                except OSError:
                    pass

    def taken(self) -> list[str]:
        with self._lock:
            attempts, self.attempts = self.attempts, []
        return attempts

    def close(self) -> None:
        self._stop.set()
        self._server.close()
        self._thread.join(2)
