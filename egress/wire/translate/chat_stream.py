"""The Chat Completions stream side of every cross-API translation, sans-IO.

`ChatStreamTranslation` reads a Chat SSE stream (from a server that speaks only Chat: llama.cpp,
vLLM, Ollama) and drives an API-specific renderer (`messages_stream`, `responses_stream`)
through a fixed sequence of hooks.

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

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import orjson

from egress.wire.sse import SseEvent
from egress.wire.translate.chat_answer import (
    ChatUsage,
    UpstreamFault,
    fault_from,
    first_choice,
    protocol_fault,
    text_of,
)
from egress.wire.translate.chat_request import (
    new_id,
)

# The client is told the answer is still coming (a ping, a repeated in_progress) when the model
# has only been reasoning, which egress does not relay, for this long: agents kill silent streams
# after 300 s.
KEEPALIVE_NS = 15_000_000_000


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
            choice = first if first.__class__ is dict and first.get("index", 0) == 0 else first_choice(choices)
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
        text = content if content.__class__ is str else text_of(content)
        refusal = delta.get("refusal")
        if refusal:
            text += text_of(refusal)
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
        function: dict[str, Any] = call["function"] if isinstance(call.get("function"), dict) else {}
        call_id: str | None = call["id"] if isinstance(call.get("id"), str) and call["id"] else None
        name: str = function["name"] if isinstance(function.get("name"), str) else ""
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
