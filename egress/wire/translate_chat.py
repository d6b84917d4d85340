"""The Chat Completions side of every cross-API translation, sans-IO.

An Anthropic Messages or OpenAI Responses request may be answered by a self-hosted server that
speaks only Chat Completions (llama.cpp, vLLM, Ollama). This module holds what both translations
share: building the pieces of a Chat request, reading a non-streamed Chat answer and its error
bodies, and `ChatStreamTranslation`, which reads a Chat SSE stream and drives an API-specific
renderer (`translate_messages`, `translate_responses`) through a fixed sequence of hooks.

Stream invariants (the renderers rely on them):
- at most one output block is *live* (opened and streaming) at any time; blocks are opened in
  the order they will appear in the client's answer, so a block's `index` is its position;
- a new block goes live when nothing is held and the live block is done: a text run is done
  when anything else begins; a tool call is done when its arguments so far are complete JSON (a
  server that finishes one call before starting the next, as they all do, streams every call
  live). Otherwise the new block is *held*: collected, then emitted whole at finish, in the order
  blocks began. So tool calls whose fragments interleave by `index` still come out intact and
  properly nested. A fragment for a closed call (only whitespace, after complete JSON) is dropped;
- once the terminal event (or an error event) has been produced, every later upstream event is
  ignored: the client never sees anything after its API's last event.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.wire.sse import SseEvent

UPSTREAM_PATH = "/chat/completions"
# The client is told the answer is still coming (a ping, a repeated in_progress) when the model
# has only been reasoning, which egress does not relay, for this long: agents kill silent streams
# after 300 s.
KEEPALIVE_NS = 15_000_000_000


def new_id(prefix: str) -> str:
    """A fresh opaque id: the prefix the client's API uses, then 24 hex digits."""
    return prefix + os.urandom(12).hex()


# --- request pieces --------------------------------------------------------------------------


def function_tool(name: Any, description: Any, parameters: Any, strict: Any = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if isinstance(description, str) and description:
        function["description"] = description
    function["parameters"] = parameters if isinstance(parameters, dict) else {"type": "object", "properties": {}}
    if isinstance(strict, bool):
        function["strict"] = strict
    return {"type": "function", "function": function}


def tool_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def image_part(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def add_tool_image(images: list[dict[str, Any]], call_id: str, part: dict[str, Any]) -> None:
    """Collect an image a tool returned: Chat tool messages carry text only, so the images go in a
    user message after the tool messages, each labelled with its call."""
    if not images:
        images.append({"type": "text", "text": "Images returned by the tool calls above:"})
    images.append({"type": "text", "text": f"(image from tool call {call_id})"})
    images.append(part)


def message_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Text-only content as one string (what every Chat server accepts), else the list of parts."""
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def merge_adjacent(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Join consecutive user (or system) messages whose content is a string.

    Agents send several user items in a row (instructions, environment, the prompt); strict chat
    templates (Gemma, Llama) reject roles that do not alternate. The model sees the same text."""
    out: list[dict[str, Any]] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and message["role"] in ("user", "system")
            and last["role"] == message["role"]
            and isinstance(last["content"], str)
            and isinstance(message["content"], str)
        ):
            last["content"] = last["content"] + "\n\n" + message["content"]
        else:
            out.append(message)
    return out


def fold_system(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The system messages' text at the top of the first user message instead.

    For chat templates that drop system messages (llama-cpp-python's `gemma` format, strict
    templates that refuse a system turn after the first): the model then still reads the
    agent's instructions, as Gemma's own template places them. Texts keep their order."""
    system = [m["content"] for m in messages if m["role"] == "system" and isinstance(m["content"], str)]
    if not system:
        return messages
    rest = [m for m in messages if not (m["role"] == "system" and isinstance(m["content"], str))]
    text = "\n\n".join(system)
    for i, message in enumerate(rest):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                rest[i] = {**message, "content": f"{text}\n\n{content}"}
            else:
                rest[i] = {**message, "content": [{"type": "text", "text": text}, *content]}
            return rest
    return [{"role": "user", "content": text}, *rest]


def finish_request(chat: dict[str, Any], stream: Any, max_tokens_cap: int | None, system_in_user: bool = False) -> bytes:
    """Set the streaming fields (usage is asked for: the client's API reports it), cap the
    answer's length, fold system messages into the first user turn if the endpoint asks, and
    serialise.

    The cap is the endpoint's: self-hosted servers refuse a request whose prompt plus
    `max_tokens` exceeds their context (llama.cpp, vLLM), and Claude Code asks for 32,000."""
    if max_tokens_cap is not None:
        chat["max_tokens"] = min(chat.get("max_tokens", max_tokens_cap), max_tokens_cap)
    if system_in_user:
        chat["messages"] = fold_system(chat["messages"])
    if stream is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return orjson.dumps(chat)


def invalid(where: str, message: str) -> EgressError:
    return EgressError(ErrorCode.INVALID_REQUEST, f"{where}: {message}")


# --- reading answers -------------------------------------------------------------------------


class ShapeError(ValueError):
    """An upstream answer that is not what Chat Completions sends."""


@dataclass(slots=True)
class ChatUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None

    @classmethod
    def parse(cls, raw: Any) -> ChatUsage | None:
        if not isinstance(raw, dict):
            return None
        usage = cls(_count(raw.get("prompt_tokens")), _count(raw.get("completion_tokens")))
        prompt = raw.get("prompt_tokens_details")
        if isinstance(prompt, dict) and isinstance(prompt.get("cached_tokens"), int):
            usage.cached_tokens = prompt["cached_tokens"]
        completion = raw.get("completion_tokens_details")
        if isinstance(completion, dict) and isinstance(completion.get("reasoning_tokens"), int):
            usage.reasoning_tokens = completion["reasoning_tokens"]
        return usage


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


@dataclass(frozen=True, slots=True)
class ToolCallOut:
    call_id: str
    name: str
    arguments: str  # the JSON text as the model wrote it (possibly invalid or truncated)


@dataclass(frozen=True, slots=True)
class ChatAnswer:
    """The first choice of a non-streamed Chat answer, reasoning dropped."""

    model: str | None
    created: int | None
    text: str
    tool_calls: tuple[ToolCallOut, ...]
    finish_reason: str | None
    usage: ChatUsage


def parse_answer(raw: bytes) -> ChatAnswer:
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ShapeError(f"the upstream answer is not JSON ({exc.msg})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("choices"), list):
        raise ShapeError("the upstream answer is not a Chat Completions object (no choices list)")
    choice = _first_choice(doc["choices"])
    message = choice.get("message") if choice is not None else None
    if not isinstance(message, dict):
        raise ShapeError("the upstream answer has no choice with a message")
    calls = message.get("tool_calls")
    return ChatAnswer(
        model=doc["model"] if isinstance(doc.get("model"), str) else None,
        created=doc["created"] if isinstance(doc.get("created"), int) else None,
        text=_text_of(message.get("content")) + _text_of(message.get("refusal")),
        tool_calls=tuple(_answer_call(c) for c in calls if isinstance(c, dict)) if isinstance(calls, list) else (),
        finish_reason=choice.get("finish_reason") if isinstance(choice.get("finish_reason"), str) else None,
        usage=ChatUsage.parse(doc.get("usage")) or ChatUsage(),
    )


def _answer_call(call: dict[str, Any]) -> ToolCallOut:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    arguments = function.get("arguments")
    if isinstance(arguments, dict):  # a few servers send the object itself
        arguments = orjson.dumps(arguments).decode()
    return ToolCallOut(
        call_id=call["id"] if isinstance(call.get("id"), str) and call["id"] else new_id("call_"),
        name=function["name"] if isinstance(function.get("name"), str) else "",
        arguments=arguments if isinstance(arguments, str) else "",
    )


def _first_choice(choices: list[Any]) -> dict[str, Any] | None:
    """Choice 0 (the translated APIs have no `n`; other choices, if any, are not relayed)."""
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # some servers send content as a list of text parts
        return "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


@dataclass(frozen=True, slots=True)
class UpstreamFault:
    """Why a Chat answer failed: an error the upstream reported, or one egress detected."""

    message: str
    code: str  # a stable machine-readable code (the upstream's, when it gave a string one)
    status: int  # the HTTP status that goes with it (for picking the client API's error type)
    kind: str | None = None  # the upstream's error `type`, when it gave one

    @property
    def context_overflow(self) -> bool:
        """The prompt did not fit the model's context (agents compact the conversation then)."""
        if self.code in _OVERFLOW_CODES or self.kind in _OVERFLOW_CODES:
            return True
        text = self.message.lower()
        return any(phrase in text for phrase in _OVERFLOW_PHRASES)


# How OpenAI, llama.cpp and vLLM say the prompt is too long for the model.
_OVERFLOW_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
_OVERFLOW_PHRASES = ("maximum context length", "exceeds the available context size", "context length exceeded")


def error_fault(status: int, raw: bytes) -> UpstreamFault:
    """Read a Chat server's error body: `{"error":{...}}` (OpenAI, llama.cpp, Ollama), a top-level
    `{"message":...}` (older vLLM) or plain text. Never raises."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        text = raw[:500].decode("utf-8", errors="replace").strip()
        return UpstreamFault(text or f"upstream answered HTTP {status} with no body", "upstream_error", status)
    return fault_from(doc, status)


def fault_from(doc: Any, status: int) -> UpstreamFault:
    error = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(error, str):
        return UpstreamFault(error, "upstream_error", status)
    source = error if isinstance(error, dict) else doc if isinstance(doc, dict) else {}
    message = source.get("message")
    kind = source.get("type") if isinstance(source.get("type"), str) and source.get("type") else None
    code = source.get("code")
    if not isinstance(code, str) or not code:
        code = kind or "upstream_error"
    if not isinstance(message, str) or not message:
        message = f"upstream answered HTTP {status}"
    return UpstreamFault(message, code, status, kind)


def translate_answer(
    status: int,
    raw: bytes,
    answer_body: Callable[[ChatAnswer], dict[str, Any]],
    error_body: Callable[[UpstreamFault], dict[str, Any]],
) -> tuple[int, bytes]:
    """(status, body) for the client from a non-streamed Chat answer. An upstream error keeps
    its status; a 2xx that is not a Chat answer becomes a protocol error (502). Never raises."""
    if not 200 <= status < 300:
        return status, orjson.dumps(error_body(error_fault(status, raw)))
    try:
        answer = parse_answer(raw)
    except ShapeError as exc:
        fault = protocol_fault(str(exc))
        return fault.status, orjson.dumps(error_body(fault))
    return status, orjson.dumps(answer_body(answer))


def protocol_fault(message: str) -> UpstreamFault:
    """egress's own finding that the upstream broke the Chat Completions protocol."""
    err = EgressError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, message)
    return UpstreamFault(f"egress: {message}", err.code.value, err.status)


# --- the stream ------------------------------------------------------------------------------


class BlockKind(Enum):
    TEXT = "text"
    TOOL = "tool"


@dataclass(slots=True)
class Block:
    """One unit of the client's answer: a run of text, or one tool call."""

    kind: BlockKind
    call_id: str = ""
    name: str = ""
    upstream_id: bool = False  # call_id came from the upstream (not generated here)
    parts: list[str] = field(default_factory=list)  # text, or argument JSON fragments, as received
    held: bool = False  # emitted whole at finish instead of streamed
    closed: bool = False  # its stop event is out: nothing more is added
    index: int = -1  # position in the client's answer; set when opened
    item_id: str = ""  # the client API's id for it, where it has one (Responses items)

    @property
    def content(self) -> str:
        return "".join(self.parts)


@dataclass(frozen=True, slots=True)
class StreamMeta:
    """What the first upstream chunk says about the answer."""

    model: str
    created: int


class ChatStreamTranslation(ABC):
    """Reads one Chat Completions stream; subclasses render the client's API from the hooks.

    Hook order for a successful answer: `_on_start`, then per block `_open`, `_delta`*, `_close`,
    then `_on_complete` exactly once. On failure: `_on_error` exactly once, instead of
    `_on_complete`. `_on_keepalive` may come between any of them.
    """

    def __init__(self, model: str, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._model = model
        self._clock = clock
        self._started = False
        self._ended = False  # terminal or error event produced: nothing more goes out
        self._live: Block | None = None
        self._held: list[Block] = []
        self._calls: dict[int, Block] = {}
        self._opened = 0  # blocks opened so far: the next block's index
        self._finish_reason: str | None = None
        self._usage: ChatUsage | None = None
        self._tool_calls = 0  # tool calls in the answer (some servers finish "stop" after calls)
        # When the model started reasoning with nothing sent since (None: something was just sent).
        # Only reasoning chunks read the clock: the per-event path never does.
        self._quiet_since: int | None = None

    # -- the StreamTranslation interface --

    def feed(self, event: bytes) -> list[bytes]:
        if self._ended:
            return []
        payload = _payload(event)
        if payload is None:
            return [event]  # a comment (keep-alive): both client APIs' SDKs ignore it; relay it
        out: list[bytes] = []
        if not payload.endswith(b"}") and payload.strip() == b"[DONE]":  # a chunk ends in "}"
            self._end(out)
        else:
            self._chunk(payload, out)
        if out:
            self._quiet_since = None
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if not self._ended:
            self._end(out)
        return out

    # -- hooks --

    @abstractmethod
    def _on_start(self, meta: StreamMeta, out: list[bytes]) -> None: ...

    @abstractmethod
    def _open(self, block: Block, out: list[bytes]) -> None: ...

    @abstractmethod
    def _delta(self, block: Block, text: str, out: list[bytes]) -> None: ...

    @abstractmethod
    def _close(self, block: Block, out: list[bytes]) -> None: ...

    @abstractmethod
    def _on_complete(self, finish_reason: str, usage: ChatUsage, tool_calls: int, out: list[bytes]) -> None: ...

    @abstractmethod
    def _on_error(self, fault: UpstreamFault, out: list[bytes]) -> None: ...

    @abstractmethod
    def _on_keepalive(self, out: list[bytes]) -> None: ...

    def _holds(self, name: str) -> bool:
        """Whether a tool call of this name is always emitted whole (never streamed)."""
        return False

    # -- reading chunks --

    def _chunk(self, payload: bytes, out: list[bytes]) -> None:
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            self._fail(protocol_fault("the upstream sent an event that is not JSON"), out)
            return
        if not isinstance(chunk, dict):
            self._fail(protocol_fault("the upstream sent an event that is not a JSON object"), out)
            return
        if chunk.get("error") or chunk.get("object") == "error":  # OpenAI's and older vLLM's shapes
            self._fail(fault_from(chunk, 502), out)
            return
        if not self._started:
            self._start(chunk, out)
        choices = chunk.get("choices")
        if choices and self._finish_reason is None:
            first = choices[0]
            # Fast path: choice 0 first (always, when n is 1).
            choice = first if first.__class__ is dict and first.get("index", 0) == 0 else _first_choice(choices)
            if choice is not None:
                self._choice(choice, out)
        usage = chunk.get("usage")
        if usage:
            self._usage = ChatUsage.parse(usage)
        if self._finish_reason is not None and self._usage is not None:
            self._complete(out)

    def _start(self, chunk: dict[str, Any], out: list[bytes]) -> None:
        if self._started:
            return
        self._started = True
        model = chunk.get("model")
        created = chunk.get("created")
        self._on_start(
            StreamMeta(
                model=model if isinstance(model, str) and model else self._model,
                created=created if isinstance(created, int) else int(time.time()),
            ),
            out,
        )

    def _choice(self, choice: dict[str, Any], out: list[bytes]) -> None:
        delta = choice.get("delta")
        if isinstance(delta, dict) and delta:
            self._deltas(delta, out)
        finish = choice.get("finish_reason")
        if isinstance(finish, str) and finish:
            self._finish_reason = finish  # set first: renderers read it while closing blocks
            self._finish_blocks(out)

    def _deltas(self, delta: dict[str, Any], out: list[bytes]) -> None:
        content = delta.get("content")
        text = content if content.__class__ is str else _text_of(content)
        refusal = delta.get("refusal")
        if refusal:
            text += _text_of(refusal)
        if text:
            self._text(text, out)
        calls = delta.get("tool_calls")
        if isinstance(calls, list):
            for position, call in enumerate(calls):
                if isinstance(call, dict):
                    self._tool(position, call, out)
        elif not text and (delta.get("reasoning_content") or delta.get("reasoning")):
            self._reasoning(out)

    def _reasoning(self, out: list[bytes]) -> None:
        """Reasoning is not relayed (see the renderers' module docs): keep the client waiting."""
        now = self._clock()
        if self._quiet_since is None:
            self._quiet_since = now
        elif now - self._quiet_since >= KEEPALIVE_NS:
            self._on_keepalive(out)

    def _text(self, text: str, out: list[bytes]) -> None:
        live = self._live
        if live is not None and live.kind is BlockKind.TEXT:
            live.parts.append(text)
            self._delta(live, text, out)
        elif self._may_go_live():
            block = Block(BlockKind.TEXT, parts=[text])
            self._open_live(block, out)
            self._delta(block, text, out)
        elif self._held and self._held[-1].kind is BlockKind.TEXT:
            self._held[-1].parts.append(text)
        else:
            self._held.append(Block(BlockKind.TEXT, parts=[text], held=True))

    def _tool(self, position: int, call: dict[str, Any], out: list[bytes]) -> None:
        key = call["index"] if isinstance(call.get("index"), int) else position
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        call_id = call.get("id") if isinstance(call.get("id"), str) and call.get("id") else None
        name = function.get("name") if isinstance(function.get("name"), str) else ""
        arguments = function.get("arguments")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        block = self._calls.get(key)
        if block is None or (call_id is not None and block.upstream_id and call_id != block.call_id):
            # A new call (a server that reuses index 0 for every call still sends a new id).
            block = self._new_call(key, call_id, name, out)
        elif name and not block.name:
            block.name = name
        if isinstance(arguments, str) and arguments and not block.closed:
            block.parts.append(arguments)
            if block is self._live:
                self._delta(block, arguments, out)

    def _new_call(self, key: int, call_id: str | None, name: str, out: list[bytes]) -> Block:
        block = Block(BlockKind.TOOL, call_id=call_id or new_id("call_"), name=name, upstream_id=call_id is not None)
        self._calls[key] = block
        self._tool_calls += 1
        if name and not self._holds(name) and self._may_go_live():
            self._open_live(block, out)
        else:
            block.held = True
            self._held.append(block)
        return block

    def _may_go_live(self) -> bool:
        """True when a new block may open now; then the live block, if any, is done."""
        if self._held:
            return False
        live = self._live
        return live is None or live.kind is BlockKind.TEXT or _is_json(live.content)

    def _open_live(self, block: Block, out: list[bytes]) -> None:
        if self._live is not None:
            self._live.closed = True
            self._close(self._live, out)
        block.index = self._opened
        self._opened += 1
        self._live = block
        self._open(block, out)

    def _finish_blocks(self, out: list[bytes]) -> None:
        """Close the live block, then emit every held block whole, in the order each began."""
        if self._live is not None:
            self._live.closed = True
            self._close(self._live, out)
            self._live = None
        for block in self._held:
            if block.kind is BlockKind.TEXT and not block.content:
                continue
            block.index = self._opened
            self._opened += 1
            self._open(block, out)
            if block.parts:
                self._delta(block, block.content, out)
            self._close(block, out)
        self._held.clear()

    def _end(self, out: list[bytes]) -> None:
        """The upstream stream is over ([DONE] or EOF)."""
        if self._finish_reason is not None:
            self._complete(out)
        else:
            self._fail(protocol_fault("the upstream stream ended before the answer was complete"), out)

    def _complete(self, out: list[bytes]) -> None:
        self._ended = True
        self._on_complete(self._finish_reason or "stop", self._usage or ChatUsage(), self._tool_calls, out)

    def _fail(self, fault: UpstreamFault, out: list[bytes]) -> None:
        self._start({}, out)  # the error continues a well-formed stream, even at its very start
        self._ended = True
        self._on_error(fault, out)


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _payload(event: bytes) -> bytes | None:
    """The data of one Chat SSE event, or None for a comment or an event without data."""
    n = len(event)
    # Fast path (every Chat server): one `data:` line, LF LF.
    if event.startswith(b"data:") and event.find(b"\n") == n - 2 and event.endswith(b"\n\n"):
        return event[5 : n - 2]  # JSON allows the leading space; orjson skips it
    parsed = SseEvent.parse(event)
    if parsed.data is None:
        return None
    return parsed.data.strip().encode()
