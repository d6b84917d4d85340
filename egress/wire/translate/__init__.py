"""Cross-API translation: a client's API answered by an upstream that speaks another one.

Supported: Anthropic Messages (Claude Code), OpenAI Responses (Codex CLI) and Gemini
(Gemini CLI, google-genai) clients, each answered by a Chat Completions upstream (llama.cpp
server, vLLM, Ollama). Which API translates to
which is a field of the API's entry in `egress.wire.apis` (`Translation`): nowhere else.

Modules, per translation: `messages` / `responses` / `gemini` (the translator, and the mapping documented
where the APIs differ), `*_request` (the request builder), `*_answer` (a whole answer and error
bodies), `*_stream` (the streamed answer). What both share, on the Chat side: `chat_request`,
`chat_answer` and `chat_stream` (the stream machinery driving each API's renderer).

Use, once per exchange:

    translator = translator_for(client_api, upstream_api)   # egress.wire.apis; None: none exists
    upstream_body = translator.request_body(body, endpoint_model)   # may raise EgressError
    # non-stream:  status, body = translator.response(upstream_status, upstream_bytes)
    # stream:      s = translator.stream(); s.feed(event) for every upstream SSE event; s.finish()

A `Translator` belongs to one exchange: `request_body` records what the answer must repeat or
needs (the model, Responses tools and custom tool names), so `translator_for` returns a new one
on every call, and one must not be shared between requests.
"""

from __future__ import annotations

from typing import Any, Protocol


class StreamTranslation(Protocol):
    def feed(self, event: bytes) -> list[bytes]:
        """One complete upstream Chat SSE event (as framed by `SseDecoder`, terminator included)
        -> zero or more complete client-API SSE events, each ending in a blank line."""
        ...

    def finish(self) -> list[bytes]:
        """The upstream ended: the final events if not yet sent; the client API's error event
        instead when the upstream never said how the answer finished."""
        ...


class Translator(Protocol):
    def request_body(
        self,
        body: bytes,
        upstream_model: str | None,
        *,
        max_tokens_cap: int | None = None,
        document: dict[str, Any] | None = None,
        system_in_user: bool = False,
    ) -> bytes:
        """The client's request as the upstream's. Raises EgressError(INVALID_REQUEST) for a
        feature the upstream API cannot express. `max_tokens_cap`, when given, bounds the
        answer's length (a self-hosted server refuses prompt + max_tokens beyond its context).
        `document`, when given, is `body` already parsed (the caller's; it is only read).
        `system_in_user` moves the system text into the first user message (templates that
        drop system messages)."""
        ...

    def response(self, status: int, raw: bytes) -> tuple[int, bytes]:
        """(status, body) for the client: the answer in the client's shape, an upstream error as
        the client's native error body (same status), garbage in a 2xx as a native error with
        502. Never raises."""
        ...

    def response_body(self, status: int, raw: bytes) -> bytes:
        """`response(status, raw)`'s body only."""
        ...

    def stream(self) -> StreamTranslation: ...
