"""The ASGI application: routes on the path only (never the query), answers the local endpoints,
and hands every API request to the pipeline.

A plain ASGI callable rather than a framework: the hot path is one dict lookup away from the
pipeline, and there is nothing else on it.

Readiness gates the API: while `gate()` names a failing check (the audit cannot be written, the
policy engine or the key store is out), every API request is refused with `gateway_not_ready`
(503, native) before anything is read or sent; the refusal is audited like any other. `gate` only
reads in-memory state kept by background loops, so it costs nothing per request.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange, Family
from egress.core.health import Readiness
from egress.gateway.auth import query_credential
from egress.gateway.pipeline import Pipeline
from egress.gateway.responder import Responder
from egress.route.catalog import Catalog
from egress.telemetry.exposition import MetricsPage
from egress.wire.apis import APIS, error_renderer, route, upstream_api

log = logging.getLogger("egress.gateway")

Hook = Callable[[], Awaitable[None]]
Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
ReadyCheck = Callable[[], Awaitable[Readiness]]  # what /readyz reports (it may ping the store)
Gate = Callable[[], tuple[str, ...]]  # the failing checks, from memory only (per request)


# The model lists: OpenAI's and Anthropic's at /v1/models, Gemini's at /v1beta/models (and at
# /v1/models for a Gemini client: `_family`).
_MODEL_LISTS = frozenset({"/v1/models", "/v1beta/models"})


def new_request_id() -> str:
    return "egr_" + secrets.token_hex(12)


class GatewayApp:
    def __init__(
        self,
        pipeline: Pipeline,
        catalog: Catalog,
        *,
        on_startup: Hook,
        on_shutdown: Hook,
        ready: ReadyCheck,
        gate: Gate | None = None,
        admin: Asgi | None = None,
        metrics: MetricsPage | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.catalog = catalog
        self._on_startup = on_startup
        self._on_shutdown = on_shutdown
        self._ready = ready
        self._gate = gate
        self._admin = admin  # the console, for paths under /admin (built by egress.app)
        self._metrics = metrics  # GET /metrics (token-protected), when served on this port
        self._models_bodies = {family: _models_body(catalog, family) for family in Family}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._on_startup()
                except Exception as exc:  # noqa: BLE001 - reported to the server, which exits
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self._on_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        api = route(path)
        request_id = new_request_id()
        if api is not None:
            # A credential in the query (`?key=`, Gemini's clients) becomes a header before
            # anything else sees the request: the query kept, forwarded or logged never holds it.
            query, headers = query_credential(scope.get("query_string", b"").decode("latin-1"), scope["headers"])
            x = Exchange(
                request_id=request_id,
                method=method,
                path=path,
                query=query,
                headers=headers,
                api=api,
                # Set by the HTTP protocol (never from a header) when mTLS verified a certificate.
                client_cert_cn=scope.get("extensions", {}).get("tls", {}).get("client_cert_cn"),
            )
            responder = Responder(send, request_id)
            failing = self._gate() if self._gate is not None else ()
            if failing:
                await self.pipeline.refuse(
                    x,
                    responder,
                    EgressError(
                        ErrorCode.GATEWAY_NOT_READY,
                        f"the gateway is not ready ({', '.join(failing)}); nothing was sent, retry later",
                    ),
                )
                return
            if method != "POST":
                await self.pipeline.refuse(
                    x,
                    responder,
                    EgressError(ErrorCode.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}; use POST"),
                )
                return
            await self.pipeline.handle(x, receive, responder)
            return
        if self._admin is not None and path.startswith("/admin") and (len(path) == 6 or path[6] == "/"):
            await self._admin(scope, receive, send)
            return
        if path == "/api/hello" and method in ("HEAD", "GET"):
            await _plain(send, 200, b"", method == "HEAD")
        elif path in _MODEL_LISTS and method == "GET":
            await _json(send, 200, self._models_bodies[_family(scope)])
        elif path == "/healthz" and method in ("GET", "HEAD"):
            await _json(send, 200, b'{"status":"ok"}', head=method == "HEAD")
        elif path == "/readyz" and method in ("GET", "HEAD"):
            report = await self._ready()
            await _json(send, 200 if report.ready else 503, _readiness_body(report), head=method == "HEAD")
        elif path == "/metrics" and method == "GET" and self._metrics is not None:
            page = self._metrics.render(_header(scope, b"authorization"))
            await send({"type": "http.response.start", "status": page.status, "headers": page.headers})
            await send({"type": "http.response.body", "body": page.body})
        else:
            family = _family(scope)
            err = EgressError(ErrorCode.NOT_FOUND, f"no such endpoint: {method} {path}")
            status, hdrs, body = error_renderer(family)(err, request_id)
            hdrs.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": status, "headers": hdrs})
            await send({"type": "http.response.body", "body": body})


def _models_body(catalog: Catalog, family: Family) -> bytes:
    """The models the client can ask for, in its API's native list shape: the names endpoints
    spell out in full (a glob such as claude-* routes but cannot be listed), of the endpoints
    that answer any of the family's APIs (directly or, Chat Completions endpoints, by translation)."""
    apis = [api for api in APIS if api.family is family]
    seen: dict[str, str] = {}
    for endpoint in catalog.endpoints:
        answers = any(upstream_api(endpoint.api, api) is not None for api in apis)
        if answers:
            for model in endpoint.listed_models():
                seen.setdefault(model, endpoint.operator)
    if family is Family.ANTHROPIC:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "1970-01-01T00:00:00Z"} for m in seen
        ]
        return orjson.dumps(
            {
                "data": data,
                "has_more": False,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )
    if family is Family.GEMINI:
        methods = ["generateContent", "streamGenerateContent", "countTokens"]
        models = [{"name": f"models/{m}", "displayName": m, "supportedGenerationMethods": methods} for m in seen]
        return orjson.dumps({"models": models})
    listed = [{"id": m, "object": "model", "created": 0, "owned_by": owner} for m, owner in seen.items()]
    return orjson.dumps({"object": "list", "data": listed})


def _family(scope: dict[str, Any]) -> Family:
    """Anthropic's clients send anthropic-version with every request, Gemini's an x-goog-api-key
    (or a `key` query parameter) or a Gemini-shaped path (`/v1beta/...`, `...:method`);
    everything else is OpenAI's."""
    names = {name for name, _ in scope["headers"]}
    if b"anthropic-version" in names:
        return Family.ANTHROPIC
    path: str = scope["path"]
    if b"x-goog-api-key" in names or path.startswith("/v1beta") or ":" in path.rsplit("/", 1)[-1]:
        return Family.GEMINI
    return Family.OPENAI


def _header(scope: dict[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _readiness_body(report: Readiness) -> bytes:
    """Each check with its detail, the audit backlog and the records no checkpoint covers yet."""
    return orjson.dumps(
        {
            "status": "ready" if report.ready else "not_ready",
            "failing": list(report.failing()),
            "checks": {
                c.name: {
                    "ok": c.ok,
                    "detail": c.detail,
                    "last_error": c.last_error,
                    "last_ok_age_s": None if c.last_ok_age_s is None else round(c.last_ok_age_s, 3),
                }
                for c in report.checks
            },
            "audit_backlog": report.audit_backlog,
            "audit_uncovered": report.audit_uncovered,
        }
    )


async def _json(send: Any, status: int, body: bytes, head: bool = False) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _plain(send: Any, status: int, body: bytes, head: bool) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": b"" if head else body})
