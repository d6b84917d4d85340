"""The streamed answer of Messages <- Chat: Chat chunks in, Anthropic Messages events out."""

from __future__ import annotations

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
from egress.wire.translate.messages_answer import error_event, stop_reason, usage_object

# Event prefixes for the hot path: one per event type, the JSON written around the variable parts.
_DELTA = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":'
_PING = encode_event("ping", b'{"type": "ping"}')
_MESSAGE_STOP = encode_event("message_stop", b'{"type":"message_stop"}')


class MessagesStreamTranslation(ChatStreamTranslation):
    """Chat chunks in, Anthropic Messages events out (framed as Anthropic frames them)."""

    def _on_start(self, meta: StreamMeta, out: list[bytes]) -> None:
        message: dict[str, Any] = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": meta.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(encode_event("message_start", orjson.dumps({"type": "message_start", "message": message})))

    def _open(self, block: Block, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT:
            content: dict[str, Any] = {"type": "text", "text": ""}
        else:
            content = {"type": "tool_use", "id": block.call_id, "name": block.name, "input": {}}
        event = {"type": "content_block_start", "index": block.index, "content_block": content}
        out.append(encode_event("content_block_start", orjson.dumps(event)))

    def _delta(self, block: Block, text: str, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT:
            out.append(b'%s%d,"delta":{"type":"text_delta","text":%s}}\n\n' % (_DELTA, block.index, orjson.dumps(text)))
        else:
            out.append(
                b'%s%d,"delta":{"type":"input_json_delta","partial_json":%s}}\n\n'
                % (_DELTA, block.index, orjson.dumps(text))
            )

    def _close(self, block: Block, out: list[bytes]) -> None:
        out.append(b"%s%d}\n\n" % (_STOP, block.index))

    def _on_complete(self, finish_reason: str, usage: ChatUsage, tool_calls: int, out: list[bytes]) -> None:
        event = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(finish_reason, tool_calls), "stop_sequence": None},
            "usage": usage_object(usage),
        }
        out.append(encode_event("message_delta", orjson.dumps(event)))
        out.append(_MESSAGE_STOP)

    def _on_error(self, fault: UpstreamFault, out: list[bytes]) -> None:
        out.append(error_event(fault))

    def _on_keepalive(self, out: list[bytes]) -> None:
        out.append(_PING)
