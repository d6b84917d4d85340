"""Google AI Studio's Gemini API on loopback: the upstream for egress's Gemini tests.

It checks what the real service checks, and answers in its shapes:
  * the API key, in `x-goog-api-key` or the `key` query parameter: missing is 403
    PERMISSION_DENIED, wrong is 400 INVALID_ARGUMENT with reason API_KEY_INVALID;
  * the body: a JSON object with only the request's own fields (an unknown one, such as a
    `model` a proxy added, is 400 "Invalid JSON payload received. Unknown name ..."), `contents`
    a list of `{role, parts}` with role `user` or `model`, each part holding exactly one kind of
    data;
  * thought signatures: every `functionCall` part it answered carried a `thoughtSignature`; when
    the conversation comes back, that part must carry the same bytes (Gemini 3 answers 400
    "missing a thought_signature" otherwise);
  * streaming: `:streamGenerateContent?alt=sse` is server-sent events (`data: <whole
    GenerateContentResponse>` and a blank line, CRLF as Google's front end writes it, no event
    names, no [DONE]; the last chunk carries finishReason and usageMetadata), without `alt=sse`
    one JSON array; the answer's text is cut at random points across chunks, and the bytes
    across network writes;
  * countTokens: `{totalTokens}` for `contents` or a wrapped `generateContentRequest`;
  * Vertex AI mode (`bearer`): the same API below `/v1/projects/{p}/locations/{l}/publishers/google/`,
    authorised by an OAuth2 access token (checked by `bearer`) instead of an API key.

The model is scripted: `script(fn)` queues a function from the request to the parts to answer,
`model` answers every other request; without either, the model echoes the text of the last user turn (`echo: ...`), so a test sees
exactly what the upstream was shown. Every request is recorded (`received`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer
from tests.support.simulator import Received, split_random

API_KEY = "AIzaSy-sim-gemini-upstream-key-0003"
_REQUEST_FIELDS = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "generationConfig",
        "cachedContent",
        "labels",
    }
)
_COUNT_FIELDS = frozenset({"contents", "generateContentRequest"})
_PART_DATA = frozenset(
    {"text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode", "codeExecutionResult"}
)
_PART_META = frozenset({"thought", "thoughtSignature", "videoMetadata", "partMetadata", "mediaResolution"})

Script = Callable[[dict[str, Any]], "list[dict[str, Any]] | Answer"]


class SimError(Exception):
    def __init__(self, status: int, code: str, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reason = status, code, message, reason

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.status, "message": self.message, "status": self.code}
        if self.reason:
            error["details"] = [
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": self.reason, "domain": "googleapis.com"}
            ]
        return {"error": error}


@dataclass
class Answer:
    parts: list[dict[str, Any]]
    finish_reason: str | None = "STOP"  # None: the stream ends without one (cut short)


def user_text(doc: dict[str, Any]) -> str:
    """The text of the last user turn (function responses included, as JSON)."""
    contents = doc.get("contents") or []
    for content in reversed(contents):
        if content.get("role", "user") == "user":
            pieces = []
            for part in content.get("parts", []):
                if "text" in part:
                    pieces.append(part["text"])
                elif "functionResponse" in part:
                    pieces.append(json.dumps(part["functionResponse"].get("response"), ensure_ascii=False))
            return "\n".join(pieces)
    return ""


def signature_for(name: str, seed: int) -> str:
    """An opaque signature, as Gemini attaches to a function call (base64 of bytes)."""
    return base64.b64encode(hashlib.sha256(f"{seed}:{name}".encode()).digest() * 2).decode()


class GeminiSimulator:
    def __init__(self, api_key: str = API_KEY, seed: int = 0, bearer: Callable[[str], bool] | None = None) -> None:
        self.api_key = api_key
        # Vertex AI mode: an OAuth2 access token instead of an API key (is this token one the
        # token endpoint issued, unexpired?), on Vertex's path below a project and location.
        self.bearer = bearer
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.sent: list[bytes] = []  # each answer's body, as written (before the network splits it)
        self._scripts: deque[Script] = deque()
        # The model for every request no script is queued for (None: it echoes).
        self.model: Script | None = None
        self._signatures: set[bytes] = set()  # every thoughtSignature this model gave
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post(r"/{version:v1(beta|alpha)?}/models/{call}", self._post)
        app.router.add_get(r"/{version:v1(beta|alpha)?}/models", self._models)
        app.router.add_post(
            r"/{version:v1(beta1)?}/projects/{project}/locations/{location}/publishers/google/models/{call}", self._post
        )
        self._server = LoopbackServer(app, "gemini-sim")

    # --- control ----------------------------------------------------------------------------------

    def start(self) -> GeminiSimulator:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.sent.clear()
            self._scripts.clear()
            self.model = None

    def script(self, fn: Script) -> None:
        """The next generate request is answered with the parts `fn` returns for its body."""
        self._scripts.append(fn)

    def function_call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        """A function-call part as Gemini writes it, with its thought signature."""
        signature = signature_for(name, self.seed)
        self._signatures.add(_signature_bytes(signature))
        return {"functionCall": {"name": name, "args": args}, "thoughtSignature": signature}

    # --- HTTP ---------------------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.Response:
        try:
            self._check_key(request)
        except SimError as err:
            return web.json_response(err.body(), status=err.status)
        models = [
            {"name": "models/gemini-2.5-pro", "supportedGenerationMethods": ["generateContent", "countTokens"]},
            {"name": "models/gemini-2.5-flash", "supportedGenerationMethods": ["generateContent", "countTokens"]},
        ]
        return web.json_response({"models": models})

    async def _post(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = [(k, v) for k, v in request.headers.items()]
        with self._lock:
            self.received.append(Received(request.method, request.path, request.query_string, headers, body))
        call = request.match_info["call"]
        model, _, method = call.rpartition(":")
        try:
            self._check_key(request)
            doc = _json_object(body)
            if method == "countTokens":
                return web.json_response(self._count(doc))
            if method not in ("generateContent", "streamGenerateContent"):
                raise SimError(404, "NOT_FOUND", f"Method {method} not found for models/{model}")
            self._check_request(doc)
            answer = self._answer(doc)
        except SimError as err:
            return web.json_response(err.body(), status=err.status)
        chunks = self._chunks(answer, model, doc)
        if method == "generateContent":
            return web.json_response(_merge(chunks))
        if request.query.get("alt") == "sse":
            data = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in chunks)
            content_type = "text/event-stream"
        else:
            data = ("[" + ",\r\n".join(json.dumps(c) for c in chunks) + "]").encode()
            content_type = "application/json; charset=UTF-8"
        with self._lock:
            self.sent.append(data)
        resp = web.StreamResponse(status=200, headers={"content-type": content_type})
        await resp.prepare(request)
        with self._lock:
            pieces = split_random(data, self._rng, max_pieces=30)
        for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp

    # --- checks -------------------------------------------------------------------------------------

    def _check_key(self, request: web.Request) -> None:
        vertex = "project" in request.match_info
        if vertex or self.bearer is not None:
            auth = request.headers.get("authorization", "")
            if not (vertex and self.bearer is not None and auth.startswith("Bearer ") and self.bearer(auth[7:])):
                raise SimError(
                    401,
                    "UNAUTHENTICATED",
                    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                    "or other valid authentication credential.",
                )
            return
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise SimError(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.",
            )
        if key != self.api_key:
            raise SimError(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", "API_KEY_INVALID"
            )

    def _check_request(self, doc: dict[str, Any], allowed: frozenset[str] = _REQUEST_FIELDS) -> None:
        for key in doc:
            if key not in allowed:
                raise SimError(
                    400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
        contents = doc.get("contents")
        if not isinstance(contents, list) or not contents:
            raise SimError(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        for c, content in enumerate(contents):
            if content.get("role", "user") not in ("user", "model", "function"):
                raise SimError(400, "INVALID_ARGUMENT", f"contents[{c}].role: Please use a valid role: user, model.")
            for p, part in enumerate(content.get("parts") or []):
                data = [k for k in part if k in _PART_DATA]
                unknown = [k for k in part if k not in _PART_DATA and k not in _PART_META]
                if unknown:
                    raise SimError(
                        400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{unknown[0]}"'
                    )
                if len(data) != 1:
                    raise SimError(400, "INVALID_ARGUMENT", f"contents[{c}].parts[{p}]: exactly one data field")
                if "functionCall" in part and content.get("role") == "model":
                    signature = part.get("thoughtSignature")
                    if _signature_bytes(signature) not in self._signatures:
                        raise SimError(
                            400,
                            "INVALID_ARGUMENT",
                            f"Function call is missing a thought_signature in functionCall parts. "
                            f"contents[{c}].parts[{p}]",
                        )

    def _count(self, doc: dict[str, Any]) -> dict[str, Any]:
        for key in doc:
            if key not in _COUNT_FIELDS:
                raise SimError(
                    400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
                )
        inner = doc.get("generateContentRequest")
        words = len(json.dumps(inner if isinstance(inner, dict) else doc.get("contents")).split())
        return {"totalTokens": words, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": words}]}

    # --- answers -----------------------------------------------------------------------------------

    def _answer(self, doc: dict[str, Any]) -> Answer:
        with self._lock:
            fn = self._scripts.popleft() if self._scripts else self.model
        if fn is None:
            return Answer([{"text": "echo: " + user_text(doc)}])
        result = fn(doc)
        return result if isinstance(result, Answer) else Answer(result)

    def _chunks(self, answer: Answer, model: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
        """The answer as streamed chunks: text parts cut at random points, function calls whole."""
        prompt_tokens = len(json.dumps(doc.get("contents")).split())
        response_id = hashlib.sha256(json.dumps(doc).encode()).hexdigest()[:22]
        parts_per_chunk: list[list[dict[str, Any]]] = []
        with self._lock:
            for part in answer.parts:
                text = part.get("text")
                if isinstance(text, str) and len(text) > 2:
                    cuts = sorted(self._rng.sample(range(1, len(text)), min(5, len(text) - 1)))
                    for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
                        parts_per_chunk.append([{**part, "text": text[a:b]}])
                else:
                    parts_per_chunk.append([part])
        output_tokens = sum(len(json.dumps(p).split()) for p in answer.parts)
        chunks = []
        for i, parts in enumerate(parts_per_chunk):
            last = i == len(parts_per_chunk) - 1
            candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
            usage: dict[str, Any] = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
            if last and answer.finish_reason is not None:
                candidate["finishReason"] = answer.finish_reason
                usage = {
                    "promptTokenCount": prompt_tokens,
                    "candidatesTokenCount": output_tokens,
                    "totalTokenCount": prompt_tokens + output_tokens,
                }
            chunks.append(
                {"candidates": [candidate], "usageMetadata": usage, "modelVersion": model, "responseId": response_id}
            )
        return chunks


def _signature_bytes(value: Any) -> bytes:
    """A proto `bytes` field as JSON carries it: base64, standard or URL-safe (both are read)."""
    if not isinstance(value, str):
        return b""
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError:
        return b""


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body)
    except ValueError:
        raise SimError(400, "INVALID_ARGUMENT", "Invalid JSON payload received.") from None
    if not isinstance(doc, dict):
        raise SimError(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Expected an object.")
    return doc


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """A whole generateContent answer: the chunks' parts joined (adjacent text parts merged)."""
    parts: list[dict[str, Any]] = []
    for chunk in chunks:
        for part in chunk["candidates"][0]["content"]["parts"]:
            if parts and "text" in part and "text" in parts[-1] and set(part) == set(parts[-1]):
                parts[-1] = {**parts[-1], "text": parts[-1]["text"] + part["text"]}
            else:
                parts.append(dict(part))
    last = chunks[-1]
    candidate = {**last["candidates"][0], "content": {"parts": parts, "role": "model"}}
    return {**last, "candidates": [candidate]}
