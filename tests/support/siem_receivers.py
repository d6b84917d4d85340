"""SIEM receivers for the delivery tests, each on a loopback port, in its own thread and loop.

- `SyslogReceiver`: TCP (TLS with the given server context, or plain), octet-counted RFC 6587
  framing parsed as bytes arrive; each RFC 5424 message is checked for its header and kept.
- `HttpReceiver`: Splunk HEC (`POST /services/collector/event`, `Authorization: Splunk TOKEN`,
  event objects one after another), Elastic bulk (`POST /_bulk`, NDJSON action + document, per-item
  results; chosen items fail once with 429), and OTLP/HTTP logs (`POST /v1/logs`, protobuf).

Both can be stopped (every open connection dropped: an outage) and started again on the same
port. What they kept is turned into `DeliveredRecord`s for verification (egress.siem.copy)."""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

from egress.siem.copy import DeliveredRecord, from_document, from_otlp, from_syslog
from tests.support.gateway import free_port

# <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD…] MSG (RFC 5424 §6)
RFC5424 = re.compile(
    rb"^<(\d{1,3})>1 (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?Z) (\S+) (\S+) (\S+) (\S+) (\[.*?\]) "
)


class _LoopThread:
    """An event loop in a daemon thread; `call` runs a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def call(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        async def cancel_rest() -> None:
            rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in rest:
                task.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self.call(cancel_rest())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


# --- syslog ------------------------------------------------------------------------------------


class _FrameParser(asyncio.Protocol):
    def __init__(self, owner: SyslogReceiver) -> None:
        self.owner = owner
        self.buffer = b""
        self.transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.owner.connections.add(self)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            space = self.buffer.find(b" ")
            if space < 0:
                return
            length = self.buffer[:space]
            if not length.isdigit() or length.startswith(b"0"):
                self.owner.errors.append(f"bad frame length {length[:20]!r}")
                assert self.transport is not None
                self.transport.close()
                return
            end = space + 1 + int(length)
            if len(self.buffer) < end:
                return
            self.owner.accept(self.buffer[space + 1 : end])
            self.buffer = self.buffer[end:]

    def eof_received(self) -> None:
        if self.buffer:
            self.owner.errors.append("connection ended inside a frame")
        # Returning None closes our side too: over TLS that answers with close_notify.

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.connections.discard(self)


@dataclass
class SyslogReceiver:
    ssl_context: ssl.SSLContext | None
    port: int = field(default_factory=free_port)
    messages: list[bytes] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connections: set[_FrameParser] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._loop = _LoopThread()
        self._server: asyncio.Server | None = None
        self._lock = threading.Lock()

    def accept(self, message: bytes) -> None:
        if not RFC5424.match(message):
            self.errors.append(f"not an RFC 5424 message: {message[:80]!r}")
            return
        with self._lock:
            self.messages.append(message)

    def start(self) -> SyslogReceiver:
        async def serve() -> asyncio.Server:
            return await self._loop.loop.create_server(
                lambda: _FrameParser(self), "127.0.0.1", self.port, ssl=self.ssl_context, reuse_address=True
            )

        self._server = self._loop.call(serve())
        return self

    def stop(self) -> None:
        """An outage: no new connections, every open one dropped."""

        async def down() -> None:
            if self._server is not None:
                self._server.close()
                for conn in list(self.connections):
                    if conn.transport is not None:
                        conn.transport.abort()  # type: ignore[attr-defined]
                await self._server.wait_closed()
                self._server = None

        self._loop.call(down())

    def close(self) -> None:
        self.stop()
        self._loop.close()

    def records(self) -> list[DeliveredRecord]:
        with self._lock:
            return [from_syslog(m) for m in self.messages]


# --- HTTP: Splunk HEC, Elastic bulk, OTLP logs ---------------------------------------------------


def hec_events(body: bytes) -> list[dict[str, Any]]:
    """HEC's batch: JSON objects one after another (whitespace between them allowed)."""
    events = []
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    at = 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return events
        obj, at = decoder.raw_decode(text, at)
        events.append(obj)


@dataclass
class HttpReceiver:
    hec_token: str = "test-hec-token"
    port: int = field(default_factory=free_port)
    delay_s: float = 0.0  # each request waits this long before it is answered (a slow SIEM)
    fail_once: set[int] = field(default_factory=set)  # bulk: these seqs fail (429) the first time
    hec: list[DeliveredRecord] = field(default_factory=list)  # in arrival order, duplicates kept
    hec_documents: list[dict[str, Any]] = field(default_factory=list)  # the events' documents, as received
    bulk: list[DeliveredRecord] = field(default_factory=list)
    bulk_index: dict[str, DeliveredRecord] = field(default_factory=dict)  # by _id, as an index holds them
    otlp: list[DeliveredRecord] = field(default_factory=list)
    refused: int = 0  # requests answered with an error
    errors: list[str] = field(default_factory=list)
    on_request: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self._loop = _LoopThread()
        self._runner: web.AppRunner | None = None
        self._lock = threading.Lock()

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=256 * 1024 * 1024)
        app.router.add_post("/services/collector/event", self._hec)
        app.router.add_post("/_bulk", self._bulk)
        app.router.add_post("/v1/logs", self._otlp)
        return app

    async def _pause(self) -> None:
        if self.on_request is not None:
            self.on_request()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)

    async def _hec(self, request: web.Request) -> web.Response:
        await self._pause()
        if request.headers.get("Authorization") != f"Splunk {self.hec_token}":
            self.refused += 1
            return web.json_response({"text": "Invalid authorization", "code": 3}, status=401)
        try:
            events = hec_events(await request.read())
            got = []
            for event in events:
                assert isinstance(event["time"], float | int) and event["sourcetype"] == "egress:audit"
                got.append(from_document(event["event"]))
        except (ValueError, KeyError, AssertionError) as exc:
            self.errors.append(f"HEC: {exc!r}")
            return web.json_response({"text": "Invalid data format", "code": 6}, status=400)
        with self._lock:
            self.hec.extend(got)
            self.hec_documents.extend(event["event"] for event in events)
        return web.json_response({"text": "Success", "code": 0})

    async def _bulk(self, request: web.Request) -> web.Response:
        await self._pause()
        if request.content_type != "application/x-ndjson":
            return web.json_response({"error": "content type"}, status=406)
        lines = [line for line in (await request.read()).split(b"\n") if line]
        if len(lines) % 2:
            return web.json_response({"error": "action without document"}, status=400)
        items = []
        errors = False
        for action_line, doc_line in zip(lines[::2], lines[1::2], strict=True):
            action = orjson.loads(action_line)["index"]
            doc = orjson.loads(doc_line)
            record = from_document(doc)
            if record.seq in self.fail_once:
                self.fail_once.discard(record.seq)
                errors = True
                items.append(
                    {
                        "index": {
                            "_index": action["_index"],
                            "_id": action["_id"],
                            "status": 429,
                            "error": {"type": "es_rejected_execution_exception", "reason": "queue full"},
                        }
                    }
                )
                continue
            with self._lock:
                self.bulk.append(record)
                created = action["_id"] not in self.bulk_index
                self.bulk_index[action["_id"]] = record
            items.append(
                {"index": {"_index": action["_index"], "_id": action["_id"], "status": 201 if created else 200}}
            )
        return web.json_response({"took": 1, "errors": errors, "items": items})

    async def _otlp(self, request: web.Request) -> web.Response:
        await self._pause()
        if request.content_type != "application/x-protobuf":
            return web.Response(status=415)
        message = ExportLogsServiceRequest()
        message.ParseFromString(await request.read())
        got = []
        for resource_logs in message.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for lr in scope_logs.log_records:
                    attributes: dict[str, object] = {}
                    for kv in lr.attributes:
                        kind = kv.value.WhichOneof("value")
                        attributes[kv.key] = getattr(kv.value, kind) if kind else None
                    got.append(from_otlp(lr.body.string_value, attributes))
        with self._lock:
            self.otlp.extend(got)
        return web.Response(body=ExportLogsServiceResponse().SerializeToString(), content_type="application/x-protobuf")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> HttpReceiver:
        async def up() -> web.AppRunner:
            runner = web.AppRunner(self._app(), shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port, reuse_address=True).start()
            return runner

        self._runner = self._loop.call(up())
        return self

    def stop(self) -> None:
        async def down() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
                self._runner = None

        self._loop.call(down())

    def close(self) -> None:
        self.stop()
        self._loop.close()


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
