"""`GET /metrics`: the Prometheus text format, behind a bearer token or on its own listener.

One process (`--workers 1`): the gateway's own registry. Several: every worker's files under
PROMETHEUS_MULTIPROC_DIR, read and summed at each scrape (prometheus_client's
MultiProcessCollector), so any worker, or the supervisor's separate listener, answers for all.

The token is compared in constant time. A scrape never sees a request's content: the families
hold counts and bounded labels only (telemetry/metrics.py).
"""

from __future__ import annotations

import hmac
import logging
import os
import socketserver
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger("egress.telemetry")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_REFUSED = b"a bearer token is required for /metrics\n"
_REFUSED_HEADERS = [
    (b"content-type", b"text/plain"),
    (b"www-authenticate", b'Bearer realm="metrics"'),
    (b"content-length", str(len(_REFUSED)).encode()),
]


@dataclass(frozen=True, slots=True)
class Page:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


class MetricsPage:
    """Renders the scrape; `token` None means the listener itself is the protection."""

    def __init__(self, registry: CollectorRegistry | None, token: str | None) -> None:
        self._registry = registry
        self._token = token.encode() if token is not None else None

    @classmethod
    def multiprocess(cls, token: str | None) -> MetricsPage:
        """Every process's values (the supervisor's listener, or a worker's /metrics)."""
        return cls(None, token)

    def authorised(self, authorization: bytes | None) -> bool:
        if self._token is None:
            return True
        if authorization is None or not authorization.startswith(b"Bearer "):
            return False
        return hmac.compare_digest(authorization[7:].strip(), self._token)

    def render(self, authorization: bytes | None) -> Page:
        if not self.authorised(authorization):
            return Page(401, list(_REFUSED_HEADERS), _REFUSED)
        body = generate_latest(self._collect())
        return Page(
            200,
            [(b"content-type", CONTENT_TYPE_LATEST.encode()), (b"content-length", str(len(body)).encode())],
            body,
        )

    def _collect(self) -> CollectorRegistry:
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:  # several workers: read every process's files, now
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return registry
        assert self._registry is not None, "one process: the gateway's own registry"
        return self._registry


def token_from_env(name: str | None) -> str | None:
    """The scrape token from the variable `metrics.token_env` names. Set but empty, or unset,
    refuses the start: an open /metrics is never the result of a missing variable."""
    if name is None:
        return None
    value = os.environ.get(name, "")
    if not value.strip():
        raise ValueError(f"metrics.token_env names {name}, which is not set (or empty): set the scrape token there")
    return value.strip()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        return None  # scrapes are not logged (the query string may carry anything)


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Listener:
    """/metrics on its own address (metrics.listen), served by a thread: a scrape never waits
    for the gateway's event loop, nor the gateway for a scrape."""

    def __init__(self, page: MetricsPage, host: str, port: int) -> None:
        self._page = page
        self._server = make_server(host, port, self._app, server_class=_ThreadingServer, handler_class=_Quiet)
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="egress-metrics", daemon=True)

    def start(self) -> Listener:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics" or environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"only GET /metrics here\n"]
        auth = environ.get("HTTP_AUTHORIZATION")
        page = self._page.render(auth.encode("latin-1") if auth is not None else None)
        reason = "200 OK" if page.status == 200 else "401 Unauthorized"
        start_response(reason, [(k.decode(), v.decode()) for k, v in page.headers])
        return [page.body]
