"""OpenAI Responses (Codex CLI) answered by a Chat Completions upstream.

Request mapping (Responses -> Chat):
- `instructions` -> the first, system, message; `input` as a string -> one user message;
- `message` items (also the type-less easy form): roles user / assistant, system and developer
  -> `system`; parts `input_text` / `output_text` / `refusal` -> text, `input_image` with an
  `image_url` -> an image part (a `file_id` or `input_file` has no Chat equivalent: refused);
- `function_call` -> an assistant `tool_calls` entry (joined to the assistant message just
  before it, so a turn's text and parallel calls are one Chat message), `function_call_output`
  -> a `role: tool` message (images in an output -> a user message after the tool messages);
- custom (freeform) tools: a custom tool becomes a function with one string parameter `input`
  (its grammar, if any, is quoted in that parameter's description); `custom_tool_call` history
  -> a tool call with arguments `{"input": "<raw input>"}`, `custom_tool_call_output` -> a tool
  message. A call of that function in the answer is turned back into a `custom_tool_call` item
  carrying the raw `input`, so Codex's apply_patch works unchanged;
- tools: `function` tools (flat `name` / `parameters`) -> Chat function tools; built-in tools
  (web / file search, code interpreter, image generation, remote MCP, tool search: run by
  OpenAI; computer, local_shell, shell, apply_patch: item types only OpenAI's models are trained
  to emit) are dropped, since a self-hosted model cannot use them and Codex sends function
  equivalents to other models; an unknown tool type is refused;
- `tool_choice`, `parallel_tool_calls`, `max_output_tokens` -> `max_tokens`, `temperature`,
  `top_p`, `text.format` (json_schema, json_object) -> `response_format`, `stream`;
- dropped: `reasoning` items (their summary and encrypted content are for OpenAI's models only),
  `reasoning`, `include`, `store`, `prompt_cache_key`, `metadata`, `text.verbosity`,
  `service_tier`, `truncation`, `user`, `safety_identifier`;
- refused: `previous_response_id`, `conversation` and `prompt` (stored state: Chat is stateless),
  `item_reference`, `compaction` (encrypted history only OpenAI can read) and every other item
  type that carries content and has no Chat equivalent.

Answer mapping (Chat -> Responses), streamed and not: text -> a `message` item with one
`output_text` part (`delta.refusal` text included: Codex reads only `output_text` parts); tool
calls -> `function_call` items (`fc_…` ids, the Chat id as `call_id`) or `custom_tool_call`
items; reasoning is not relayed (a reasoning item without OpenAI's encrypted content would be
refused if a later turn of the conversation went to OpenAI); while the model reasons, a
repeated `response.in_progress` keeps Codex's idle timer from firing. `finish_reason` length ->
status `incomplete`, reason `max_output_tokens`; content_filter -> `incomplete`, reason
`content_filter`; the terminal event is then `response.incomplete`, as OpenAI sends it (Codex
reports it as an error rather than taking the truncated answer as complete); otherwise
`response.completed`. Failures -> an `error` event and `response.failed`.
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
from egress.wire.translate.responses_answer import error_object, response_object
from egress.wire.translate.responses_request import RequestEcho, chat_request
from egress.wire.translate.responses_stream import ResponsesStreamTranslation


class ResponsesTranslator:
    """One exchange's translation (a new one per request: the answer echoes the request)."""

    __slots__ = ("_echo",)

    def __init__(self) -> None:
        self._echo = RequestEcho()

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
        chat, self._echo = chat_request(doc, upstream_model)
        return finish_request(chat, doc.get("stream"), max_tokens_cap, system_in_user)

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status for the client, Responses body). A 2xx that is not a Chat answer becomes 502."""
        return translate_answer(
            status, raw, lambda answer: response_object(answer, self._echo), lambda f: {"error": error_object(f)}
        )

    def response_body(self, status: int, raw: bytes) -> bytes:
        return self.response(status, raw)[1]

    def stream(self) -> ResponsesStreamTranslation:
        return ResponsesStreamTranslation(self._echo)
