"""The streamed answer of Gemini <- Chat: Chat chunks in, Gemini `streamGenerateContent?alt=sse`
events out (each a whole GenerateContentResponse on one `data: ` line)."""

from __future__ import annotations

import orjson

from egress.wire.sse import encode_event
from egress.wire.translate.chat_answer import ChatUsage, UpstreamFault
from egress.wire.translate.chat_request import new_id
from egress.wire.translate.chat_stream import Block, BlockKind, ChatStreamTranslation, StreamMeta
from egress.wire.translate.gemini_answer import error_event, finish_reason, function_call, response_object


class GeminiStreamTranslation(ChatStreamTranslation):
    """Text streams as it comes, one chunk per Chat delta; a function call goes out whole when
    its arguments are complete (Gemini never streams arguments); the last chunk carries the
    finishReason and the usage. Gemini SSE has no ping: a keep-alive is a chunk with empty text."""

    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._version = model
        self._response_id = new_id("")

    def _event(
        self, parts: list[dict[str, object]], finish: str | None = None, usage: ChatUsage | None = None
    ) -> bytes:
        doc = response_object(parts, finish, usage, self._version, self._response_id)
        return encode_event(None, orjson.dumps(doc))

    def _on_start(self, meta: StreamMeta, out: list[bytes]) -> None:
        self._version = meta.model

    def _open(self, block: Block, out: list[bytes]) -> None:
        return None  # Gemini has no block start: text and calls are parts of the next chunk

    def _delta(self, block: Block, text: str, out: list[bytes]) -> None:
        if block.kind is BlockKind.TEXT and text:
            out.append(self._event([{"text": text}]))

    def _close(self, block: Block, out: list[bytes]) -> None:
        if block.kind is BlockKind.TOOL:
            out.append(self._event([function_call(block.name, block.content)]))

    def _on_complete(self, finish: str, usage: ChatUsage, tool_calls: int, out: list[bytes]) -> None:
        out.append(self._event([{"text": ""}], finish_reason(finish), usage))

    def _on_error(self, fault: UpstreamFault, out: list[bytes]) -> None:
        out.append(error_event(fault))

    def _on_keepalive(self, out: list[bytes]) -> None:
        out.append(self._event([{"text": ""}]))
