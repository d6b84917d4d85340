"""An autocomplete upstream on loopback: OpenAI's legacy `POST /v1/completions` and Mistral's
`POST /v1/fim/completions`, speaking their real shapes and checking what those services check.

What it checks, as the services do:
  * the bearer key (`Authorization: Bearer …`): 401 in the service's own shape otherwise;
  * the body: a JSON object with a string `model`; OpenAI's `prompt` is a string, a list of
    strings or token ids, Mistral's a required string, and `suffix` a string: OpenAI answers 400
    `{"error": …}`, Mistral 422 `{"detail": [...]}` (FastAPI's validation shape).

What it answers: a deterministic "model" that completes with the prompt and the suffix it was sent,
`<prompt>|<suffix>` (so a test sees exactly which text reached the provider, and the answer cites
every placeholder egress put there). Streamed, the text is cut into pieces of 1 to 5 characters
(placeholders land across chunks) and the bytes are written in random network pieces:
  * legacy: one `text_completion` object per `data:` line, an empty-text chunk with the
    `finish_reason`, a usage chunk when `stream_options.include_usage`, then `data: [DONE]`;
  * FIM: Chat-shaped chunks (`chat.completion.chunk`, `delta.content`; the first carries the
    role), the last with `finish_reason` and usage (as Mistral sends it), then `data: [DONE]`.
Everything received is recorded (`received`), so tests assert on the bytes that left egress.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.support.loopback import LoopbackServer
from tests.support.simulator import split_random


@dataclass(frozen=True)
class Call:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def completion_text(prompt: str, suffix: str | None) -> str:
    """What the simulated model answers for a prompt and suffix."""
    return f"{prompt}|{suffix or ''}"


class CompletionsSimulator:
    def __init__(self, openai_key: str, mistral_key: str, seed: int = 0) -> None:
        self.keys = {"/v1/completions": openai_key, "/v1/fim/completions": mistral_key}
        self.received: list[Call] = []
        self.rng = random.Random(seed)
        self._lock = threading.Lock()
        self._server: LoopbackServer | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CompletionsSimulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/completions", self._legacy)
        app.router.add_post("/v1/fim/completions", self._fim)
        self._server = LoopbackServer(app, "completions-simulator")
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        with self._lock:
            self.received.clear()

    # --- the two APIs ---------------------------------------------------------------------------

    async def _legacy(self, request: web.Request) -> web.StreamResponse:
        doc = await self._accept(request)
        if isinstance(doc, web.Response):
            return doc
        model, prompt, suffix = doc.get("model"), doc.get("prompt", "<|endoftext|>"), doc.get("suffix")
        problem = None
        if not isinstance(model, str):
            problem = "you must provide a model parameter"
        elif not _legacy_prompt_ok(prompt):
            problem = "'prompt' must be a string, an array of strings, or an array of tokens"
        elif suffix is not None and not isinstance(suffix, str):
            problem = "'suffix' must be a string"
        if problem is not None:
            error = {"message": problem, "type": "invalid_request_error", "param": None, "code": None}
            return web.json_response({"error": error}, status=400)
        prompts = prompt if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt) else [prompt]
        texts = [completion_text(p if isinstance(p, str) else json.dumps(p), suffix) for p in prompts]
        ident = f"cmpl-{self.rng.randrange(10**12)}"
        base = {"id": ident, "object": "text_completion", "created": int(time.time()), "model": model}
        usage = {"prompt_tokens": sum(len(t) for t in prompts), "completion_tokens": sum(len(t) for t in texts)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not doc.get("stream"):
            choices = [{"text": t, "index": i, "logprobs": None, "finish_reason": "stop"} for i, t in enumerate(texts)]
            return web.json_response({**base, "choices": choices, "usage": usage})
        events = []
        for i, text in enumerate(texts):
            for piece in self._pieces(text):
                choice = {"text": piece, "index": i, "logprobs": None, "finish_reason": None}
                events.append({**base, "choices": [choice]})
            events.append({**base, "choices": [{"text": "", "index": i, "logprobs": None, "finish_reason": "stop"}]})
        options = doc.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            events.append({**base, "choices": [], "usage": usage})
        return await self._stream(request, events)

    async def _fim(self, request: web.Request) -> web.StreamResponse:
        doc = await self._accept(request)
        if isinstance(doc, web.Response):
            return doc
        details = []
        for field, required in (("model", True), ("prompt", True), ("suffix", False)):
            value = doc.get(field)
            if value is None and required:
                details.append({"type": "missing", "loc": ["body", field], "msg": "Field required", "input": doc})
            elif value is not None and not isinstance(value, str):
                details.append(
                    {
                        "type": "string_type",
                        "loc": ["body", field],
                        "msg": "Input should be a valid string",
                        "input": value,
                    }
                )
        if details:
            return web.json_response({"detail": details}, status=422)
        text = completion_text(doc["prompt"], doc.get("suffix"))
        ident = f"{self.rng.randrange(16**32):032x}"
        base = {"id": ident, "object": "chat.completion", "created": int(time.time()), "model": doc["model"]}
        usage = {"prompt_tokens": len(doc["prompt"]), "completion_tokens": len(text), "total_tokens": 0}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if not doc.get("stream"):
            message = {"role": "assistant", "content": text, "tool_calls": None, "prefix": False}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response({**base, "choices": [choice], "usage": usage})
        base["object"] = "chat.completion.chunk"
        events = [
            {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]}
        ]
        for piece in self._pieces(text):
            events.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        events.append(
            {**base, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "stop"}], "usage": usage}
        )
        return await self._stream(request, events)

    # --- shared ---------------------------------------------------------------------------------

    async def _accept(self, request: web.Request) -> dict[str, Any] | web.Response:
        body = await request.read()
        with self._lock:
            self.received.append(Call(request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        if request.headers.get("authorization") != f"Bearer {self.keys[request.path]}":
            if request.path == "/v1/fim/completions":
                return web.json_response({"message": "Unauthorized", "request_id": "sim"}, status=401)
            error = {"message": "Incorrect API key provided", "type": "invalid_request_error", "param": None}
            return web.json_response({"error": {**error, "code": "invalid_api_key"}}, status=401)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            if request.path == "/v1/fim/completions":
                detail = [{"type": "json_invalid", "loc": ["body"], "msg": "JSON decode error", "input": {}}]
                return web.json_response({"detail": detail}, status=422)
            error = {"message": "We could not parse the JSON body of your request.", "type": "invalid_request_error"}
            return web.json_response({"error": {**error, "param": None, "code": None}}, status=400)
        return doc

    def _pieces(self, text: str) -> list[str]:
        out = []
        with self._lock:
            while text:
                n = self.rng.randint(1, 5)
                out.append(text[:n])
                text = text[n:]
        return out

    async def _stream(self, request: web.Request, events: list[dict[str, Any]]) -> web.StreamResponse:
        wire = b"".join(b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n" for e in events)
        wire += b"data: [DONE]\n\n"
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        with self._lock:
            chunks = split_random(wire, self.rng)
        for chunk in chunks:
            await response.write(chunk)
        await response.write_eof()
        return response


def _legacy_prompt_ok(prompt: Any) -> bool:
    """OpenAI's prompt: a string, a list of strings, a list of token ids, or a list of such lists."""
    if isinstance(prompt, str):
        return True
    if not isinstance(prompt, list):
        return False
    return all(isinstance(p, str) for p in prompt) or all(
        isinstance(p, int) or isinstance(p, list) and all(isinstance(t, int) for t in p) for p in prompt
    )
