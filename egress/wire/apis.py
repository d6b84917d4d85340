"""Every wire API egress serves: one `ApiSpec` each, registered in one table, `APIS`.

Everything the gateway knows about an API is read from its entry: the client's route and the
upstream path, which endpoints speak it, how a request is parsed (its text, and the signed text
that must never be rewritten), how an answer is checked and its usage read, its native error
shape, how its stream is restored, the model's text in an answer (recordings), which API it is
translated to for an endpoint that does not speak it, and its stateful ids. Nothing else
branches on the API: adding one is adding its entry here, with the modules it names
(docs/adding-an-api.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import orjson

from egress.core.endpoint import WireApi
from egress.core.errors import EgressError
from egress.core.exchange import Api, Family, ParsedRequest, Usage
from egress.wire import anthropic, completions, gemini, openai_chat, openai_errors, openai_responses
from egress.wire.answer_text import chat_text, completions_text, gemini_text, messages_text, no_text, responses_text
from egress.wire.stream_grammar import (
    ChatGrammar,
    CompletionsGrammar,
    GeminiGrammar,
    MessagesGrammar,
    ResponsesGrammar,
    StreamGrammar,
)
from egress.wire.translate import Translator
from egress.wire.translate.gemini import GeminiTranslator, streaming_translator
from egress.wire.translate.messages import MessagesTranslator
from egress.wire.translate.responses import ResponsesTranslator


class StreamObserver(Protocol):
    usage: Usage
    complete: bool  # the API's final event has been seen: the answer is whole

    def observe(self, raw: bytes) -> None:
        """One whole event; raises upstream_protocol_error for one that is not the API's SSE."""
        ...

    def error_event(self, err: EgressError) -> bytes: ...


ErrorRenderer = Callable[[EgressError, str], tuple[int, list[tuple[bytes, bytes]], bytes]]


@dataclass(frozen=True, slots=True)
class Translation:
    """How a client's API is answered by an endpoint that does not speak it."""

    target: Api  # the API the upstream is spoken to instead
    new: Callable[[], Translator]  # a translator for one exchange (it remembers the request)


@dataclass(frozen=True, slots=True)
class StatefulIds:
    """An API whose answers the provider may keep, for a later request to continue by id: the
    placeholder map of a kept answer must outlive its request (egress.mask.vault)."""

    kept: Callable[[dict[str, Any]], bool]  # does the provider keep this request's answer?
    continues: Callable[[dict[str, Any]], str | None]  # the id of the answer this request continues
    answer_id: Callable[[bytes], str | None]  # the id of a whole (non-streamed) answer


@dataclass(frozen=True, slots=True)
class EchoPaths:
    """Where an API's answer names the model (object keys from the top): in a whole answer, and in
    a stream event's data. The client's own name is put back there when the endpoint was asked
    for another id (model mapping, egress.mask.model_field); an empty path: not echoed there."""

    body: tuple[str, ...] = ()
    event: tuple[str, ...] = ()


NO_ECHO = EchoPaths()
_TOP_MODEL = EchoPaths(("model",), ("model",))  # Chat and completions: the answer and every chunk
_GEMINI_MODEL = EchoPaths(("modelVersion",), ("modelVersion",))  # Gemini: the answer and every chunk


@dataclass(frozen=True, slots=True)
class ApiSpec:
    api: Api
    route: str  # the path clients post to (the gateway routes on the path only)
    upstream_path: str  # appended to an endpoint's base URL
    spoken_by: frozenset[WireApi]  # the endpoints that answer it without translation
    # The request's text locations and signed text (Prompt.signed); precise EgressErrors.
    parse_request: Callable[[Api, bytes], ParsedRequest]
    read_usage: Callable[[dict[str, Any], Usage], None]  # from a whole answer's JSON object
    stream_observer: Callable[[Usage], StreamObserver]
    render_error: ErrorRenderer  # egress's own error, in the API's native shape
    # Raises upstream_protocol_error for a 2xx body that is not this API's answer.
    check_body: Callable[[bytes], None]
    stream_grammar: Callable[[], StreamGrammar]  # for restoring its streamed answers
    answer_text: Callable[[bytes, bool], str]  # the model's text in an answer (whole or streamed)
    translation: Translation | None = None
    stateful: StatefulIds | None = None
    model_echo: EchoPaths = NO_ECHO  # where the answer names the model
    # Other paths clients post the same API to (Gemini's `/v1/...` beside `/v1beta/...`). A
    # route or alias may hold `{model}`: one path segment, the model (see `route`).
    aliases: tuple[str, ...] = ()
    # For an API that names the model (and streaming) in its path rather than its body: the
    # parsed request completed from the request's path and query (precise EgressErrors).
    from_route: Callable[[ParsedRequest, str, str], ParsedRequest] | None = None

    def path_for(self, model: str) -> str:
        """The upstream path for a request of `model` (`{model}` in `upstream_path`, if any)."""
        if not self.model_in_path:
            return self.upstream_path
        return self.upstream_path.replace(_MODEL, quote(model, safe="-._~"))

    @property
    def model_in_path(self) -> bool:
        """The upstream is told the model in the path (`{model}`), not in the body."""
        return _MODEL in self.upstream_path

    def usage_from_body(self, body: bytes, usage: Usage) -> None:
        """Token usage of a whole answer; nothing from a body that is not a JSON object."""
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            return
        if isinstance(doc, dict):
            self.read_usage(doc, usage)


_MODEL = "{model}"
_RESPONSES_IDS = StatefulIds(
    openai_responses.answer_kept, openai_responses.continued_answer, openai_responses.answer_id
)
_TO_CHAT_MESSAGES = Translation(Api.OPENAI_CHAT, MessagesTranslator)
_TO_CHAT_RESPONSES = Translation(Api.OPENAI_CHAT, ResponsesTranslator)

APIS: dict[Api, ApiSpec] = {
    spec.api: spec
    for spec in (
        ApiSpec(
            Api.ANTHROPIC_MESSAGES,
            route="/v1/messages",
            # Anthropic base URLs are the host (https://api.anthropic.com); OpenAI ones end in /v1.
            upstream_path="/v1/messages",
            model_echo=EchoPaths(("model",), ("message", "model")),
            # Bedrock and Vertex answer Messages on their own paths and bodies (egress.route.clouds).
            spoken_by=frozenset({WireApi.ANTHROPIC, WireApi.BEDROCK, WireApi.VERTEX}),
            parse_request=anthropic.parse_request,
            read_usage=anthropic.read_usage,
            stream_observer=anthropic.StreamObserver,
            render_error=anthropic.render_error,
            check_body=anthropic.check_body,
            stream_grammar=MessagesGrammar,
            answer_text=messages_text,
            translation=_TO_CHAT_MESSAGES,
        ),
        ApiSpec(
            Api.ANTHROPIC_COUNT_TOKENS,
            route="/v1/messages/count_tokens",
            upstream_path="/v1/messages/count_tokens",
            spoken_by=frozenset({WireApi.ANTHROPIC}),
            parse_request=anthropic.parse_request,
            read_usage=anthropic.read_usage,
            stream_observer=anthropic.StreamObserver,
            render_error=anthropic.render_error,
            check_body=anthropic.check_count_body,
            stream_grammar=MessagesGrammar,
            answer_text=no_text,
        ),
        ApiSpec(
            Api.OPENAI_CHAT,
            route="/v1/chat/completions",
            upstream_path="/chat/completions",
            model_echo=_TOP_MODEL,
            spoken_by=frozenset({WireApi.OPENAI, WireApi.OPENAI_CHAT, WireApi.MISTRAL}),
            parse_request=openai_chat.parse_request,
            read_usage=openai_chat.read_usage,
            stream_observer=openai_chat.StreamObserver,
            render_error=openai_errors.render_error,
            check_body=openai_chat.check_body,
            stream_grammar=ChatGrammar,
            answer_text=chat_text,
        ),
        ApiSpec(
            Api.OPENAI_RESPONSES,
            route="/v1/responses",
            upstream_path="/responses",
            model_echo=EchoPaths(("model",), ("response", "model")),
            spoken_by=frozenset({WireApi.OPENAI}),
            parse_request=openai_responses.parse_request,
            read_usage=openai_responses.read_usage,
            stream_observer=openai_responses.StreamObserver,
            render_error=openai_errors.render_error,
            check_body=openai_responses.check_body,
            stream_grammar=ResponsesGrammar,
            answer_text=responses_text,
            translation=_TO_CHAT_RESPONSES,
            stateful=_RESPONSES_IDS,
        ),
        ApiSpec(
            Api.OPENAI_RESPONSES_COMPACT,
            route="/v1/responses/compact",
            upstream_path="/responses/compact",
            spoken_by=frozenset({WireApi.OPENAI}),
            parse_request=openai_responses.parse_request,
            read_usage=openai_responses.read_usage,
            stream_observer=openai_responses.StreamObserver,
            render_error=openai_errors.render_error,
            check_body=openai_responses.check_body,
            stream_grammar=ResponsesGrammar,
            answer_text=no_text,
        ),
        # Autocomplete (egress.wire.completions). Neither is translated: a prompt and suffix are
        # joined by the model's own FIM template, which only the provider knows; a Chat model
        # given an invented one answers prose, not code to insert; and the self-hosted servers'
        # legacy completions refuse `suffix` (docs/adding-an-api.md).
        ApiSpec(
            Api.OPENAI_COMPLETIONS,
            route="/v1/completions",
            upstream_path="/completions",
            model_echo=_TOP_MODEL,
            spoken_by=frozenset({WireApi.OPENAI, WireApi.OPENAI_CHAT}),
            parse_request=completions.parse_completions,
            # The answer's choices, usage and stream ending are Chat's; only the text key differs.
            read_usage=openai_chat.read_usage,
            stream_observer=openai_chat.StreamObserver,
            render_error=openai_errors.render_error,
            check_body=openai_chat.check_body,
            stream_grammar=CompletionsGrammar,
            answer_text=completions_text,
        ),
        ApiSpec(
            Api.FIM_COMPLETIONS,
            route="/v1/fim/completions",
            upstream_path="/fim/completions",
            model_echo=_TOP_MODEL,
            spoken_by=frozenset({WireApi.MISTRAL}),
            parse_request=completions.parse_fim,
            # The answer is a Chat completion (choices[].message.content, streamed as deltas).
            read_usage=openai_chat.read_usage,
            stream_observer=openai_chat.StreamObserver,
            render_error=openai_errors.render_error,
            check_body=openai_chat.check_body,
            stream_grammar=ChatGrammar,
            answer_text=chat_text,
        ),
        # Gemini (egress.wire.gemini): the model is in the path, one API per method.
        ApiSpec(
            Api.GEMINI_GENERATE,
            route="/v1beta/models/{model}:generateContent",
            aliases=("/v1/models/{model}:generateContent",),
            upstream_path="/v1beta/models/{model}:generateContent",
            model_echo=_GEMINI_MODEL,
            spoken_by=frozenset({WireApi.GEMINI, WireApi.VERTEX_GEMINI}),
            parse_request=gemini.parse_request,
            from_route=gemini.from_route,
            read_usage=gemini.read_usage,
            stream_observer=gemini.StreamObserver,
            render_error=gemini.render_error,
            check_body=gemini.check_body,
            stream_grammar=GeminiGrammar,
            answer_text=gemini_text,
            translation=Translation(Api.OPENAI_CHAT, GeminiTranslator),
        ),
        ApiSpec(
            Api.GEMINI_STREAM,
            route="/v1beta/models/{model}:streamGenerateContent",
            aliases=("/v1/models/{model}:streamGenerateContent",),
            # The client's query (alt=sse, which from_route requires) is forwarded with it.
            upstream_path="/v1beta/models/{model}:streamGenerateContent",
            model_echo=_GEMINI_MODEL,
            spoken_by=frozenset({WireApi.GEMINI, WireApi.VERTEX_GEMINI}),
            parse_request=gemini.parse_request,
            from_route=gemini.from_route,
            read_usage=gemini.read_usage,
            stream_observer=gemini.StreamObserver,
            render_error=gemini.render_error,
            check_body=gemini.check_body,
            stream_grammar=GeminiGrammar,
            answer_text=gemini_text,
            translation=Translation(Api.OPENAI_CHAT, streaming_translator),
        ),
        ApiSpec(
            Api.GEMINI_COUNT_TOKENS,
            route="/v1beta/models/{model}:countTokens",
            aliases=("/v1/models/{model}:countTokens",),
            upstream_path="/v1beta/models/{model}:countTokens",
            spoken_by=frozenset({WireApi.GEMINI}),
            parse_request=gemini.parse_request,
            from_route=gemini.from_route,
            read_usage=gemini.read_usage,
            stream_observer=gemini.StreamObserver,
            render_error=gemini.render_error,
            check_body=gemini.check_count_body,
            stream_grammar=GeminiGrammar,
            answer_text=no_text,
        ),
    )
}

ROUTES: dict[str, Api] = {
    path: api for api, spec in APIS.items() for path in (spec.route, *spec.aliases) if _MODEL not in path
}
# Routes with a `{model}` segment, as (prefix, suffix, api): tried only when no exact route matches.
_MODEL_ROUTES: tuple[tuple[str, str, Api], ...] = tuple(
    (path[: path.index(_MODEL)], path[path.index(_MODEL) + len(_MODEL) :], api)
    for api, spec in APIS.items()
    for path in (spec.route, *spec.aliases)
    if _MODEL in path
)


def route(path: str) -> Api | None:
    """The API a client's path posts to: an exact route, or one whose `{model}` is a non-empty
    path segment (no `/`) of the path. A trailing slash is ignored."""
    if len(path) > 1:
        path = path.rstrip("/")
    api = ROUTES.get(path)
    if api is not None:
        return api
    for prefix, suffix, candidate in _MODEL_ROUTES:
        if path.startswith(prefix) and path.endswith(suffix):
            model = path[len(prefix) : len(path) - len(suffix)]
            if model and "/" not in model:
                return candidate
    return None


def speaks(endpoint: WireApi, api: Api) -> bool:
    """Does an endpoint of this kind answer `api` as it is, without translation?"""
    return endpoint in APIS[api].spoken_by


def upstream_api(endpoint: WireApi, api: Api) -> Api | None:
    """The API a request of `api` is sent to such an endpoint in: `api` itself, the API it is
    translated to, or None when the endpoint cannot answer it at all."""
    spec = APIS[api]
    if endpoint in spec.spoken_by:
        return api
    if spec.translation is not None and endpoint in APIS[spec.translation.target].spoken_by:
        return spec.translation.target
    return None


def guess_api(body: bytes) -> Api:
    """The API a request body is written for, from its shape alone (a request without its route:
    `egress policy eval`). A body that is not JSON guesses Messages: its parser gives the precise error."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return Api.ANTHROPIC_MESSAGES
    if isinstance(doc, dict) and "contents" in doc and "messages" not in doc:
        return Api.GEMINI_GENERATE
    if isinstance(doc, dict) and "input" in doc and "messages" not in doc:
        return Api.OPENAI_RESPONSES
    if isinstance(doc, dict) and "prompt" in doc and "messages" not in doc:
        return Api.OPENAI_COMPLETIONS  # FIM bodies look the same; their text is the same fields
    if isinstance(doc, dict) and ("system" in doc or "max_tokens" in doc and "anthropic_version" in doc):
        return Api.ANTHROPIC_MESSAGES
    if isinstance(doc, dict) and str(doc.get("model", "")).startswith("claude"):
        return Api.ANTHROPIC_MESSAGES
    return Api.OPENAI_CHAT


def translator_for(client: Api, upstream: Api) -> Translator | None:
    """A new translator for one exchange, or None when `client` is not translated to `upstream`."""
    translation = APIS[client].translation
    return translation.new() if translation is not None and translation.target is upstream else None


def error_renderer(family: Family) -> ErrorRenderer:
    """The native error shape of a wire family (for a request that reached no API's route)."""
    return next(spec.render_error for spec in APIS.values() if spec.api.family is family)


def upstream_spec(api: Api, translated: bool) -> ApiSpec:
    """The API the upstream was spoken to for a request of `api`: itself, or its translation's."""
    translation = APIS[api].translation
    return APIS[translation.target] if translated and translation is not None else APIS[api]


def answer_text(api: Api, raw: bytes, stream: bool) -> str:
    """The model's text in an answer of `api` as an upstream sent it: for people reading a recording."""
    return APIS[api].answer_text(raw, stream)
