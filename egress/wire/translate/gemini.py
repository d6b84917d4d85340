"""Gemini (generateContent, streamGenerateContent: Gemini CLI, google-genai) answered by a Chat
Completions upstream (a self-hosted server, or any Chat endpoint).

Request mapping (Gemini -> Chat):
- the model is the path's (through model mapping), not the body's: Gemini bodies have none;
  streaming is the method's (`:streamGenerateContent`), so the translator is told it;
- `systemInstruction` (text parts, joined by a blank line) -> the first, system, message;
- `contents`: role `user` -> user messages (text parts, inline images as data URLs), its
  `functionResponse` parts -> `role: tool` messages *before* the rest of the turn (the response
  object serialised to a JSON string), paired with their call by `id`, or, as Gemini pairs
  them, by name in order; role `model` -> assistant messages (text -> `content`, `functionCall`
  -> `tool_calls` with the args serialised, an id generated where Gemini gave none);
- dropped: thought parts (Gemini's own, signed for Gemini only: `thoughtSignature` never leaves
  for another provider), `safetySettings`, `cachedContent`, `labels`, `thinkingConfig`, and
  Google's own tools (search, code execution, URL context: they run on Google's side);
- `tools[].functionDeclarations` -> function tools (`parametersJsonSchema` as it is, or
  `parameters` with Gemini's upper-case type names lower-cased); `toolConfig`
  AUTO/ANY/NONE -> auto/required/none (ANY with one allowed name -> that function);
- `generationConfig`: temperature, topP, topK, seed, penalties, `maxOutputTokens` ->
  `max_tokens`, `stopSequences` -> `stop`, `responseJsonSchema`/`responseSchema` ->
  `response_format` json_schema, `responseMimeType: application/json` -> json_object;
  `candidateCount` other than 1 is refused;
- a part with no Chat equivalent (`fileData`, code execution, non-image media) is refused with
  a precise error.

Answer mapping (Chat -> Gemini), streamed and not:
- one candidate, role `model`: text -> a text part, tool calls -> `functionCall` parts (args
  parsed to an object; Gemini streams a call whole, so a streamed call goes out once its
  arguments are complete);
- `finish_reason` stop and tool_calls -> STOP, length -> MAX_TOKENS, content_filter -> SAFETY,
  anything else -> OTHER; reasoning is not relayed (a Gemini thought needs Google's signature);
- `usage` -> `usageMetadata` (promptTokenCount, candidatesTokenCount, totalTokenCount,
  cachedContentTokenCount), on the last chunk of a stream;
- errors in Gemini's shape (`{"error": {code, message, status}}`), in the stream too.
countTokens has no Chat equivalent: it is not translated (a Chat-only endpoint cannot answer it).
"""

from __future__ import annotations

from typing import Any

from egress.wire.body import load_object
from egress.wire.translate.chat_answer import translate_answer
from egress.wire.translate.chat_request import finish_request, new_id
from egress.wire.translate.gemini_answer import answer_object, error_object
from egress.wire.translate.gemini_request import chat_request
from egress.wire.translate.gemini_stream import GeminiStreamTranslation


class GeminiTranslator:
    """One exchange's translation (a new one per request: it remembers the model sent)."""

    __slots__ = ("_model", "_stream")

    def __init__(self, stream: bool = False) -> None:
        self._model = ""
        self._stream = stream  # streamGenerateContent: the method, not the body, says so

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
        self._model = chat["model"]
        return finish_request(chat, self._stream, max_tokens_cap, system_in_user)

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status for the client, Gemini body). A 2xx that is not a Chat answer becomes 502."""
        response_id = new_id("")
        return translate_answer(
            status, raw, lambda answer: answer_object(answer, self._model, response_id), error_object
        )

    def response_body(self, status: int, raw: bytes) -> bytes:
        return self.response(status, raw)[1]

    def stream(self) -> GeminiStreamTranslation:
        return GeminiStreamTranslation(self._model)


def streaming_translator() -> GeminiTranslator:
    """The translator of `:streamGenerateContent` (a module-level function: picklable by name)."""
    return GeminiTranslator(stream=True)


__all__ = ["GeminiTranslator", "streaming_translator"]
