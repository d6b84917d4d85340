"""Anthropic Messages (Claude Code) answered by a Chat Completions upstream.

Request mapping (Messages -> Chat):
- `system` (string or text blocks, joined by a blank line) -> the first, system, message;
- user content: `tool_result` blocks -> `role: tool` messages, in order, *before* the rest of the
  turn (Chat requires tool messages right after the assistant's `tool_calls`); `is_error` ->
  the text is prefixed with `[tool error]`; images in a tool result -> a user message after the
  tool messages; text, `image` (base64 -> data URL, or url) and text `document` blocks -> the user
  message (text-only content is one string);
- assistant content: text -> `content`, `tool_use` -> `tool_calls` (input serialised to a JSON
  string, `toolu_…` ids unchanged); `thinking` / `redacted_thinking` are dropped (signed for
  Anthropic only; a Chat model cannot use them);
- `tools` -> function tools (`input_schema` -> `parameters`); Anthropic server tools (a `type`
  other than `custom`: web search, bash, text editor, computer) are dropped: they run on
  Anthropic's side and a self-hosted model cannot call them;
- `tool_choice` auto/any/tool/none -> auto/required/{function}/none, `disable_parallel_tool_use`
  -> `parallel_tool_calls: false`; `max_tokens`, `temperature`, `top_p`, `top_k`,
  `stop_sequences` -> `stop`; `output_config.format` json_schema -> `response_format`;
- dropped: `cache_control`, `metadata`, `thinking`, `context_management`, `service_tier`,
  `output_config.effort` and every field Chat has no use for. A block type with content and no
  Chat equivalent (server tool results, PDF documents, …) is refused with a precise error.

Answer mapping (Chat -> Messages), streamed and not:
- `finish_reason` stop -> `end_turn` (Chat does not say which stop sequence matched, so
  `stop_sequence` is null), length -> `max_tokens`, tool_calls (or any finish after a tool call)
  -> `tool_use`, content_filter -> `refusal` (Anthropic's "the answer was stopped by a safety
  filter"; the text so far stays), anything else -> `end_turn`;
- `delta.refusal` text is relayed as text; reasoning (`reasoning_content`) is not relayed: a
  thinking block needs an Anthropic signature, and an unsigned one would break the next turn if
  policy routes it to Anthropic. While the model reasons, `ping` events keep the stream alive;
- `message_start` carries zero usage (Chat reports usage at the end); `message_delta` carries
  the final `input_tokens` / `output_tokens` (and `cache_read_input_tokens` when reported), so it
  is held until the usage chunk, `[DONE]` or the end of the stream.
"""

from __future__ import annotations

from typing import Any

from egress.wire.body import load_object
from egress.wire.translate.chat_answer import (
    translate_answer,
)
from egress.wire.translate.chat_request import (
    finish_request,
)
from egress.wire.translate.messages_answer import error_object, message_object
from egress.wire.translate.messages_request import chat_request
from egress.wire.translate.messages_stream import MessagesStreamTranslation


class MessagesTranslator:
    """One exchange's translation (a new one per request: it remembers the request's model)."""

    __slots__ = ("_model",)

    def __init__(self) -> None:
        self._model = ""

    def request_body(
        self,
        body: bytes,
        upstream_model: str | None,
        *,
        max_tokens_cap: int | None = None,
        document: dict[str, Any] | None = None,
        system_in_user: bool = False,
    ) -> bytes:
        doc = document if document is not None else load_object(body)
        chat = chat_request(doc, upstream_model)
        self._model = chat["model"] if isinstance(chat["model"], str) else ""
        return finish_request(chat, doc.get("stream"), max_tokens_cap, system_in_user)

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status for the client, Messages body). A 2xx that is not a Chat answer becomes 502."""
        return translate_answer(status, raw, lambda answer: message_object(answer, self._model), error_object)

    def response_body(self, status: int, raw: bytes) -> bytes:
        return self.response(status, raw)[1]

    def stream(self) -> MessagesStreamTranslation:
        return MessagesStreamTranslation(self._model)
