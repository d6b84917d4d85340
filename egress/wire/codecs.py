"""One table from API to its codec: the gateway asks here, never branches on the API itself."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from egress.core.errors import EgressError
from egress.core.exchange import Api, Family, ParsedRequest, Usage
from egress.wire import anthropic, openai_chat, openai_errors, openai_responses


class StreamObserver(Protocol):
    usage: Usage
    complete: bool  # the API's final event has been seen: the answer is whole

    def observe(self, raw: bytes) -> None:
        """One whole event; raises upstream_protocol_error for one that is not the API's SSE."""
        ...

    def error_event(self, err: EgressError) -> bytes: ...


ErrorRenderer = Callable[[EgressError, str], tuple[int, list[tuple[bytes, bytes]], bytes]]


@dataclass(frozen=True, slots=True)
class WireCodec:
    api: Api
    parse_request: Callable[[Api, bytes], ParsedRequest]
    usage_from_body: Callable[[bytes, Usage], None]
    stream_observer: Callable[[Usage], StreamObserver]
    render_error: ErrorRenderer
    # Raises upstream_protocol_error for a 2xx body that is not this API's answer.
    check_body: Callable[[bytes], None]


CODECS: dict[Api, WireCodec] = {
    Api.ANTHROPIC_MESSAGES: WireCodec(
        Api.ANTHROPIC_MESSAGES,
        anthropic.parse_request,
        anthropic.usage_from_body,
        anthropic.StreamObserver,
        anthropic.render_error,
        anthropic.check_body,
    ),
    Api.ANTHROPIC_COUNT_TOKENS: WireCodec(
        Api.ANTHROPIC_COUNT_TOKENS,
        anthropic.parse_request,
        anthropic.usage_from_body,
        anthropic.StreamObserver,
        anthropic.render_error,
        anthropic.check_count_body,
    ),
    Api.OPENAI_CHAT: WireCodec(
        Api.OPENAI_CHAT,
        openai_chat.parse_request,
        openai_chat.usage_from_body,
        openai_chat.StreamObserver,
        openai_errors.render_error,
        openai_chat.check_body,
    ),
    Api.OPENAI_RESPONSES: WireCodec(
        Api.OPENAI_RESPONSES,
        openai_responses.parse_request,
        openai_responses.usage_from_body,
        openai_responses.StreamObserver,
        openai_errors.render_error,
        openai_responses.check_body,
    ),
    Api.OPENAI_RESPONSES_COMPACT: WireCodec(
        Api.OPENAI_RESPONSES_COMPACT,
        openai_responses.parse_request,
        openai_responses.usage_from_body,
        openai_responses.StreamObserver,
        openai_errors.render_error,
        openai_responses.check_body,
    ),
}

ERROR_RENDERERS: dict[Family, ErrorRenderer] = {
    Family.ANTHROPIC: anthropic.render_error,
    Family.OPENAI: openai_errors.render_error,
}
