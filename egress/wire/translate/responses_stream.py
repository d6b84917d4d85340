"""The streamed answer of Responses <- Chat: Chat chunks in, Responses events out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from egress.wire.sse import encode_event
from egress.wire.translate.chat_answer import (
    ChatUsage,
    UpstreamFault,
)
from egress.wire.translate.chat_request import (
    new_id,
)
from egress.wire.translate.chat_stream import Block, BlockKind, ChatStreamTranslation, StreamMeta
from egress.wire.translate.responses_answer import (
    ResponseHead,
    call_item,
    error_code,
    message_item,
    outcome,
    usage_object,
)
from egress.wire.translate.responses_request import RequestEcho

# response.failed's error.code: the codes Codex acts on; anything else is reported as server_error.
_FAILED_CODES = frozenset({"rate_limit_exceeded", "context_length_exceeded", "insufficient_quota", "server_error"})


_TEXT_DELTA = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","sequence_number":'
_ARGS_DELTA = (
    b"event: response.function_call_arguments.delta\n"
    b'data: {"type":"response.function_call_arguments.delta","sequence_number":'
)


class ResponsesStreamTranslation(ChatStreamTranslation):
    """Chat chunks in, Responses events out, `sequence_number` counting from 0 without gaps."""

    def __init__(self, echo: RequestEcho, clock: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(echo.model, clock)
        self._echo = echo
        self._seq = 0
        self._head = ResponseHead(echo, new_id("resp_"), 0, echo.model)
        self._output: list[dict[str, Any]] = []  # finished items, in output_index order

    def _event(self, kind: str, fields: dict[str, Any], out: list[bytes]) -> None:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        out.append(encode_event(kind, orjson.dumps(event)))

    def _lifecycle(self, kind: str, status: str, out: list[bytes], **extra: Any) -> None:
        self._event(kind, {"response": self._head.object(status, self._output, **extra)}, out)

    def _on_start(self, meta: StreamMeta, out: list[bytes]) -> None:
        self._head.created_at = meta.created
        self._head.model = meta.model
        self._lifecycle("response.created", "in_progress", out)
        self._lifecycle("response.in_progress", "in_progress", out)

    def _on_keepalive(self, out: list[bytes]) -> None:
        self._lifecycle("response.in_progress", "in_progress", out)

    def _custom(self, block: Block) -> bool:
        return block.kind is BlockKind.TOOL and block.name in self._echo.custom_tools

    def _holds(self, name: str) -> bool:
        # A custom tool's raw input is inside a JSON string: it is decoded once the call is whole.
        return name in self._echo.custom_tools

    def _open(self, block: Block, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT:
            block.item_id = new_id("msg_")
            item: dict[str, Any] = {
                "id": block.item_id,
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
        else:
            block.item_id = new_id("ctc_" if self._custom(block) else "fc_")
            item = call_item(block.item_id, block.call_id, block.name, "", self._custom(block), "in_progress")
        self._event("response.output_item.added", {"output_index": block.index, "item": item}, out)
        if block.kind is BlockKind.TEXT:
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            fields = {"item_id": block.item_id, "output_index": block.index, "content_index": 0, "part": part}
            self._event("response.content_part.added", fields, out)

    def _delta(self, block: Block, text: str, out: list[bytes]) -> None:
        seq = self._seq
        if block.kind is BlockKind.TEXT:
            self._seq += 1
            out.append(
                b'%s%d,"item_id":"%s","output_index":%d,"content_index":0,"delta":%s,"logprobs":[]}\n\n'
                % (_TEXT_DELTA, seq, block.item_id.encode(), block.index, orjson.dumps(text))
            )
        elif not self._custom(block):
            self._seq += 1
            out.append(
                b'%s%d,"item_id":"%s","output_index":%d,"delta":%s}\n\n'
                % (_ARGS_DELTA, seq, block.item_id.encode(), block.index, orjson.dumps(text))
            )

    def _close(self, block: Block, out: list[bytes]) -> None:
        status = "incomplete" if outcome(self._finish_reason)[0] == "incomplete" else "completed"
        if block.kind is BlockKind.TEXT:
            item = self._close_text(block, status, out)
        elif self._custom(block):
            item = self._close_custom(block, status, out)
        else:
            item = self._close_function(block, status, out)
        self._output.append(item)
        self._event("response.output_item.done", {"output_index": block.index, "item": item}, out)

    def _close_text(self, block: Block, status: str, out: list[bytes]) -> dict[str, Any]:
        item = message_item(block.item_id, block.content, status)
        where = {"item_id": block.item_id, "output_index": block.index, "content_index": 0}
        self._event("response.output_text.done", {**where, "text": block.content, "logprobs": []}, out)
        self._event("response.content_part.done", {**where, "part": item["content"][0]}, out)
        return item

    def _close_function(self, block: Block, status: str, out: list[bytes]) -> dict[str, Any]:
        item = call_item(block.item_id, block.call_id, block.name, block.content, False, status)
        fields = {"item_id": block.item_id, "output_index": block.index, "arguments": block.content}
        self._event("response.function_call_arguments.done", fields, out)
        return item

    def _close_custom(self, block: Block, status: str, out: list[bytes]) -> dict[str, Any]:
        item = call_item(block.item_id, block.call_id, block.name, block.content, True, status)
        where = {"item_id": block.item_id, "output_index": block.index}
        if item["input"]:
            self._event("response.custom_tool_call_input.delta", {**where, "delta": item["input"]}, out)
        self._event("response.custom_tool_call_input.done", {**where, "input": item["input"]}, out)
        return item

    def _on_complete(self, finish_reason: str, usage: ChatUsage, tool_calls: int, out: list[bytes]) -> None:
        status, extra = outcome(finish_reason)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        self._lifecycle(kind, status, out, final=True, usage=usage_object(usage), **extra)

    def _on_error(self, fault: UpstreamFault, out: list[bytes]) -> None:
        code = error_code(fault)
        self._event("error", {"code": code, "message": fault.message, "param": None}, out)
        failed = {"code": code if code in _FAILED_CODES else "server_error", "message": fault.message}
        self._lifecycle("response.failed", "failed", out, final=True, error=failed)
