"""The Gemini API as a wire API: its routes (the model in the path), every text location of a
request (fail closed on unknown parts; never media or thought signatures), usage, answer checks,
stream observation, its native error shape, and restoration of its streams under any split."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

import pytest
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Api, Family, SegmentKind, Usage
from egress.gateway.approval_gate import KEEPALIVE
from egress.gateway.auth import find_gateway_key, query_credential
from egress.mask.restore import Restorer
from egress.wire import gemini
from egress.wire.answer_text import gemini_text
from egress.wire.apis import APIS, error_renderer, guess_api, route
from tests.support.masking import PLACEHOLDERS, mask_request, run_stream

# --- routes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "api"),
    [
        ("/v1beta/models/gemini-2.5-pro:generateContent", Api.GEMINI_GENERATE),
        ("/v1beta/models/gemini-2.5-pro:streamGenerateContent", Api.GEMINI_STREAM),
        ("/v1beta/models/gemini-2.5-flash:countTokens", Api.GEMINI_COUNT_TOKENS),
        ("/v1/models/gemini-3-pro-preview:generateContent", Api.GEMINI_GENERATE),
        ("/v1/models/gemini-3-pro-preview:streamGenerateContent/", Api.GEMINI_STREAM),
        ("/v1beta/models/:generateContent", None),  # no model
        ("/v1beta/models/a/b:generateContent", None),  # not one segment
        ("/v1beta/models/gemini-2.5-pro:embedContent", None),
        ("/v1beta/tunedModels/x:generateContent", None),
        ("/v1/messages", Api.ANTHROPIC_MESSAGES),
    ],
)
def test_routes_with_the_model_in_the_path(path: str, api: Api | None) -> None:
    assert route(path) is api


def test_the_upstream_path_names_the_endpoint_s_model() -> None:
    assert APIS[Api.GEMINI_STREAM].path_for("gemini-2.5-pro") == "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    assert APIS[Api.GEMINI_GENERATE].path_for("a b/c") == "/v1beta/models/a%20b%2Fc:generateContent"
    assert APIS[Api.OPENAI_CHAT].path_for("gpt-5") == "/chat/completions"
    assert all(APIS[api].model_in_path for api in Api if api.family is Family.GEMINI)


def test_the_model_and_streaming_come_from_the_route() -> None:
    body = b'{"contents":[{"role":"user","parts":[{"text":"hi"}]}]}'
    parsed = gemini.parse_request(Api.GEMINI_STREAM, body)
    assert parsed.model == "" and parsed.stream
    done = gemini.from_route(parsed, "/v1beta/models/gemini-2.5-pro:streamGenerateContent", "alt=sse")
    assert done.model == "gemini-2.5-pro" and done.stream and done.prompt is parsed.prompt
    whole = gemini.parse_request(Api.GEMINI_GENERATE, body)
    assert not gemini.from_route(whole, "/v1/models/m:generateContent", "").stream


@pytest.mark.parametrize("query", ["", "alt=json", "alt=ss", "x=alt%3Dsse"])
def test_a_stream_must_ask_for_server_sent_events(query: str) -> None:
    parsed = gemini.parse_request(Api.GEMINI_STREAM, b'{"contents":[]}')
    with pytest.raises(EgressError) as caught:
        gemini.from_route(parsed, "/v1beta/models/m:streamGenerateContent", query)
    assert caught.value.code is ErrorCode.INVALID_REQUEST and "alt=sse" in caught.value.message


def test_guess_api_knows_a_gemini_body() -> None:
    assert guess_api(b'{"contents":[{"parts":[{"text":"x"}]}]}') is Api.GEMINI_GENERATE


# --- request text ------------------------------------------------------------------------------

SIGNATURE = "c2lnbmVkIGJ5IGdvb2dsZQ=="
MEDIA = "iVBORw0KGgoAAAANSUhEUg=="

REQUEST = {
    "systemInstruction": {"parts": [{"text": "system words"}]},
    "contents": [
        {"role": "user", "parts": [{"text": "user words"}, {"inlineData": {"mimeType": "image/png", "data": MEDIA}}]},
        {
            "role": "model",
            "parts": [
                {"text": "thinking words", "thought": True, "thoughtSignature": SIGNATURE},
                {
                    "functionCall": {"id": "c1", "name": "read_file", "args": {"path": "args words"}},
                    "thoughtSignature": SIGNATURE,
                },
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"id": "c1", "name": "read_file", "response": {"content": "result words"}}},
                {
                    "fileData": {
                        "mimeType": "text/plain",
                        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc",
                    }
                },
                {"executableCode": {"language": "PYTHON", "code": "code words"}},
                {"futurePart": {"nested": ["future words"]}},
            ],
        },
    ],
    "tools": [{"functionDeclarations": [{"name": "read_file", "description": "Read a file"}]}],
    "cachedContent": "cachedContents/abc123",
    "generationConfig": {"temperature": 0.2},
}


def test_every_text_location_and_nothing_opaque() -> None:
    parsed = gemini.parse_request(Api.GEMINI_GENERATE, json.dumps(REQUEST).encode())
    found = {s.text: (s.path, s.kind) for s in parsed.prompt.segments}
    assert found == {
        "system words": (("systemInstruction", "parts", 0, "text"), SegmentKind.SYSTEM),
        "user words": (("contents", 0, "parts", 0, "text"), SegmentKind.MESSAGE),
        "thinking words": (("contents", 1, "parts", 0, "text"), SegmentKind.MESSAGE),
        "args words": (("contents", 1, "parts", 1, "functionCall", "args", "path"), SegmentKind.TOOL_INPUT),
        "result words": (
            ("contents", 2, "parts", 0, "functionResponse", "response", "content"),
            SegmentKind.TOOL_RESULT,
        ),
        "code words": (("contents", 2, "parts", 2, "executableCode", "code"), SegmentKind.MESSAGE),
        # An unknown part type is walked whole (fail closed).
        "future words": (("contents", 2, "parts", 3, "futurePart", "nested", 0), SegmentKind.MESSAGE),
    }
    texts = "".join(s.text for s in parsed.prompt.segments)
    for opaque in (SIGNATURE, MEDIA, "abc123", "files/abc"):
        assert opaque not in texts


def test_count_tokens_wrapping_a_generate_request() -> None:
    body = {"generateContentRequest": {"model": "models/m", **REQUEST}}
    parsed = gemini.parse_request(Api.GEMINI_COUNT_TOKENS, json.dumps(body).encode())
    assert {s.path[0] for s in parsed.prompt.segments} == {"generateContentRequest"}
    assert len(parsed.prompt.segments) == 7


def test_shapes_egress_does_not_know_are_walked_whole() -> None:
    body = {"contents": "loose words", "systemInstruction": "loose system"}
    parsed = gemini.parse_request(Api.GEMINI_GENERATE, json.dumps(body).encode())
    assert {s.text for s in parsed.prompt.segments} == {"loose words", "loose system"}


def test_masking_leaves_the_signature_and_media_byte_for_byte() -> None:
    secret = "AKIAIOSFODNN7EXAMPLE"
    doc = json.loads(json.dumps(REQUEST).replace("words", secret))
    body = json.dumps(doc).encode()
    masked = mask_request(Api.GEMINI_GENERATE, body, {secret: "aws-access-key-id"})
    assert secret.encode() not in masked.body
    sent = json.loads(masked.body)
    assert sent["contents"][1]["parts"][1]["thoughtSignature"] == SIGNATURE
    assert sent["contents"][0]["parts"][1]["inlineData"]["data"] == MEDIA
    assert masked.masked_count == 7


@settings(deadline=None)  # a loaded CI machine: no per-example time limit
@given(st.binary(max_size=200))
def test_parsing_raises_nothing_but_a_precise_error(body: bytes) -> None:
    try:
        gemini.parse_request(Api.GEMINI_GENERATE, body)
    except EgressError as err:
        assert err.code in (ErrorCode.INVALID_JSON, ErrorCode.INVALID_REQUEST, ErrorCode.INVALID_UTF8)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["text", "parts", "contents", "role", "functionCall", "args", "x"]), inner, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(deadline=None)
@given(st.dictionaries(st.sampled_from(["contents", "systemInstruction", "generateContentRequest", "x"]), json_values))
def test_any_document_parses(doc: dict[str, Any]) -> None:
    parsed = gemini.parse_request(Api.GEMINI_GENERATE, json.dumps(doc).encode())
    assert all(isinstance(s.text, str) and s.text for s in parsed.prompt.segments)


# --- answers ------------------------------------------------------------------------------------


def chunk(
    text: str | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    parts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One GenerateContentResponse: a text part, or the parts given."""
    content = parts if parts is not None else [{"text": text}] if text is not None else []
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": content}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    doc: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-pro", "responseId": "r1"}
    if usage:
        doc["usageMetadata"] = usage
    return doc


def event(doc: dict[str, Any], crlf: bool = False) -> bytes:
    end = b"\r\n\r\n" if crlf else b"\n\n"
    return b"data: " + json.dumps(doc).encode() + end


def test_usage_whole_and_streamed() -> None:
    usage = Usage()
    gemini.read_usage(
        {
            "usageMetadata": {
                "promptTokenCount": 10,
                "candidatesTokenCount": 4,
                "thoughtsTokenCount": 6,
                "cachedContentTokenCount": 2,
            }
        },
        usage,
    )
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (10, 10, 2)
    counted = Usage()
    gemini.read_usage({"totalTokens": 31}, counted)
    assert counted.input_tokens == 31
    streamed = Usage()
    observer = gemini.StreamObserver(streamed)
    observer.observe(event(chunk("a", usage={"promptTokenCount": 9})))
    assert not observer.complete
    observer.observe(event(chunk("b", "STOP", {"promptTokenCount": 9, "candidatesTokenCount": 3}), crlf=True))
    assert observer.complete and (streamed.input_tokens, streamed.output_tokens) == (9, 3)


def test_a_blocked_prompt_or_an_error_completes_the_stream() -> None:
    blocked = gemini.StreamObserver(Usage())
    blocked.observe(event({"promptFeedback": {"blockReason": "SAFETY"}}))
    assert blocked.complete
    failed = gemini.StreamObserver(Usage())
    failed.observe(event({"error": {"code": 500, "message": "x", "status": "INTERNAL"}}))
    assert failed.complete


@pytest.mark.parametrize("raw", [b"data: [1]\n\n", b"data: not json\n\n", b"garbage"])
def test_a_stream_that_is_not_gemini_s_is_a_protocol_error(raw: bytes) -> None:
    with pytest.raises(EgressError) as caught:
        gemini.StreamObserver(Usage()).observe(raw)
    assert caught.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR


def test_answer_checks() -> None:
    gemini.check_body(json.dumps(chunk("x", "STOP")).encode())
    gemini.check_body(b'{"promptFeedback": {"blockReason": "SAFETY"}}')
    gemini.check_count_body(b'{"totalTokens": 3}')
    gemini.check_count_body(b"{}")  # proto3 JSON leaves a zero out
    for bad, check in [
        (b"[]", gemini.check_body),
        (b'{"choices": []}', gemini.check_body),
        (b'{"totalTokens": "3"}', gemini.check_count_body),
    ]:
        with pytest.raises(EgressError) as caught:
            check(bad)
        assert caught.value.code is ErrorCode.UPSTREAM_PROTOCOL_ERROR


def test_answer_text_leaves_thoughts_out() -> None:
    wire = event(chunk(parts=[{"text": "hmm", "thought": True}])) + event(chunk("Hel")) + event(chunk("lo", "STOP"))
    assert gemini_text(wire, True) == "Hello"
    assert gemini_text(json.dumps(chunk("Whole", "STOP")).encode(), False) == "Whole"
    assert gemini_text(b"garbage", False) == "" and gemini_text(b"garbage", True) == ""


# --- egress's own errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "name"),
    [
        (ErrorCode.INVALID_REQUEST, 400, "INVALID_ARGUMENT"),
        (ErrorCode.UNAUTHORIZED, 401, "UNAUTHENTICATED"),
        (ErrorCode.NOT_FOUND, 404, "NOT_FOUND"),
        (ErrorCode.UPSTREAM_UNAVAILABLE, 502, "UNAVAILABLE"),
        (ErrorCode.GATEWAY_NOT_READY, 503, "UNAVAILABLE"),
    ],
)
def test_native_error_shape(code: ErrorCode, status: int, name: str) -> None:
    err = EgressError(code, "what went wrong", details={"attempts": [{"endpoint": "e"}]})
    got_status, headers, body = error_renderer(Family.GEMINI)(err, "egr_1")
    doc = json.loads(body)
    assert got_status == status == doc["error"]["code"]
    assert doc["error"]["status"] == name
    assert doc["error"]["message"] == "egress: what went wrong"
    info = doc["error"]["details"][0]
    assert info["reason"] == code.value.upper() and info["metadata"]["attempts"] == '[{"endpoint":"e"}]'
    assert (b"x-egress-request-id", b"egr_1") in headers
    in_stream = gemini.StreamObserver(Usage()).error_event(err)
    assert in_stream.startswith(b'data: {"error":') and in_stream.endswith(b"\n\n")


# --- the gateway key where Gemini clients send theirs ---------------------------------------------


def test_the_key_query_parameter_becomes_a_header() -> None:
    query, headers = query_credential("alt=sse&key=egk_a%2Bb&x=1", [(b"accept", b"*/*")])
    assert query == "alt=sse&x=1"
    assert headers == [(b"accept", b"*/*"), (b"x-goog-api-key", b"egk_a+b")]
    assert find_gateway_key(headers) == ("egk_a+b", b"x-goog-api-key")
    untouched = [(b"a", b"b")]
    assert query_credential("alt=sse", untouched) == ("alt=sse", untouched)
    assert query_credential("monkey=1", untouched)[0] == "monkey=1"
    # A provider key is no gateway key: it stays the client's (forwarded only to passthrough).
    assert find_gateway_key([(b"x-goog-api-key", b"AIzaSy-real")]) == (None, None)


# --- streamed answers restored under any split ----------------------------------------------------

SECRETS = {"AKIAIOSFODNN7EXAMPLE": "AWS_ACCESS_KEY_ID", 'pa"ss\\w\u00e9\U0001d11e': "GENERIC_PASSWORD"}
MAP = {PLACEHOLDERS.make(value, rule): value for value, rule in SECRETS.items()}

piece = st.one_of(
    st.sampled_from(sorted(MAP)),
    st.sampled_from(["E", "EG", "EGX_", "EGX_AWS_ACCESS", '"', "\\", "\n"]),
    st.text(alphabet="ab \u00e9\u4e2dE", max_size=5),
)
texts = st.lists(piece, max_size=10).map("".join)


def restore_plain(text: str) -> str:
    for placeholder, value in MAP.items():
        text = text.replace(placeholder, value)
    return text


def pieces(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)] or [""]


@settings(max_examples=300, deadline=None)
@given(
    thought=texts,
    text=texts,
    arg=texts,
    thought_cuts=st.lists(st.integers(0, 200), max_size=4),
    text_cuts=st.lists(st.integers(0, 200), max_size=6),
    wire_cuts=st.lists(st.integers(0, 4000), max_size=12),
    crlf=st.booleans(),
)
def test_stream_restoration_under_any_split(
    thought: str, text: str, arg: str, thought_cuts: list[int], text_cuts: list[int], wire_cuts: list[int], crlf: bool
) -> None:
    """Thoughts, then the answer's text in any pieces, then a function call whose args (holding
    a `text` key of their own) arrive whole: the client reads the restored text, the restored
    args, the signature as it was; no placeholder of the map reaches it, whole or in part."""
    docs = [chunk(parts=[{"text": p, "thought": True}]) for p in pieces(thought, thought_cuts)]
    docs += [chunk(p) for p in pieces(text, text_cuts)]
    call = {"functionCall": {"name": "write", "args": {"text": arg, "n": [arg]}}, "thoughtSignature": SIGNATURE}
    last = chunk(None, "STOP", {"promptTokenCount": 1, "candidatesTokenCount": 2}, parts=[call])
    docs.append(last)
    wire = b"".join(event(d, crlf) for d in docs)
    restorer = Restorer().stream(Api.GEMINI_STREAM, MAP)
    assert restorer is not None
    out = run_stream(restorer, wire, wire_cuts)
    got = [json.loads(line[5:]) for line in out.decode("utf-8").splitlines() if line.startswith("data:")]
    parts = [p for d in got for p in d["candidates"][0]["content"]["parts"]]
    assert "".join(p["text"] for p in parts if p.get("thought")) == restore_plain(thought)
    assert "".join(p["text"] for p in parts if "text" in p and not p.get("thought")) == restore_plain(text)
    [called] = [p for p in parts if "functionCall" in p]
    assert called["functionCall"]["args"] == {"text": restore_plain(arg), "n": [restore_plain(arg)]}
    assert called["thoughtSignature"] == SIGNATURE
    assert got[-1]["candidates"][0]["finishReason"] == "STOP"
    shown = out.decode("utf-8")
    for placeholder in MAP:
        assert placeholder not in shown


def test_every_family_has_a_keepalive_and_gemini_s_reads_as_no_text() -> None:
    assert set(KEEPALIVE) == set(Family)
    observer = gemini.StreamObserver(Usage())
    observer.observe(KEEPALIVE[Family.GEMINI])
    assert not observer.complete
    chunk = types.GenerateContentResponse.model_validate(json.loads(KEEPALIVE[Family.GEMINI][6:]))
    assert not chunk.text


query_names = st.sampled_from(["key", "k%65y", "%6Bey", "alt", "k", "keys", "key%20", "pageSize", ""])
query_values = st.text(alphabet="abc=%+&_-.~egk", max_size=6)


@given(st.lists(st.tuples(query_names, query_values), max_size=6))
def test_no_key_parameter_survives_in_the_query(pairs: list[tuple[str, str]]) -> None:
    """Whatever the query, the one kept holds no `key` parameter, every other one stays as the
    client encoded it and in its order, and each key found becomes one x-goog-api-key header."""
    query = "&".join(f"{name}={value.replace('&', '%26')}" for name, value in pairs)
    kept, headers = query_credential(query, [])
    names = [unquote_plus(pair.partition("=")[0]) for pair in kept.split("&") if pair]
    assert "key" not in names  # also when the client percent-encoded the name
    is_key = [unquote_plus(p.partition("=")[0]) == "key" for p in query.split("&")]
    others = [p for p, key in zip(query.split("&"), is_key, strict=True) if p and not key]
    assert kept.split("&") == others or (kept == "" and others == [])
    assert len(headers) == sum(is_key)
    assert all(name == b"x-goog-api-key" for name, _ in headers)
