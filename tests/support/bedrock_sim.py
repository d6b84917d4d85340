"""An Amazon Bedrock runtime simulator on loopback that checks what Bedrock checks.

- Authentication: a SigV4 signature is recomputed from the known test credentials with
  botocore's own canonical-request and signing primitives over what arrived (method, raw path,
  query, the signed headers as received, the body's SHA-256) and its scope (key id, date, region,
  service `bedrock`) is checked; a Bedrock API key must be the one configured. A wrong one is
  refused as Bedrock does: 403 with `x-amzn-ErrorType` and `{"message": ...}`.
- The request: `POST /model/{modelId}/invoke` or `/invoke-with-response-stream`, the model id
  percent-encoded; the body must carry `anthropic_version: bedrock-2023-05-31` and no `model` or
  `stream` (Bedrock: "Extra inputs are not permitted").
- The answer: a streamed one in real event-stream framing (both CRCs, egress.wire.eventstream's
  encoder checked against botocore's decoder in the unit tests), each `chunk` event the base64 of
  one recorded Anthropic SSE event, with `p` padding, the last with invocation metrics; frames
  split at random byte boundaries. A whole one is the message assembled from the same events.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import random
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from egress.wire.eventstream import Header, encode_message
from tests.support.loopback import LoopbackServer
from tests.support.simulator import Received, assemble_anthropic, fixtures_dir, parse_events, split_random

ACCESS_KEY = "AKIDSIMBEDROCK000001"
SECRET_KEY = "sim/secret+bedrock/Key0000000000000000001"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
# The beta flags AWS documents for Claude on Bedrock; any other is refused (400 "invalid beta flag").
KNOWN_BETAS = {
    "computer-use-2024-10-22",
    "computer-use-2025-01-24",
    "token-efficient-tools-2025-02-19",
    "interleaved-thinking-2025-05-14",
    "output-128k-2025-02-19",
    "dev-full-thinking-2025-05-14",
    "context-1m-2025-08-07",
    "context-management-2025-06-27",
    "effort-2025-11-24",
    "tool-search-tool-2025-10-19",
    "tool-examples-2025-10-29",
}
_PATH = re.compile(r"^/model/(?P<model>[^/]+)/(?P<op>invoke|invoke-with-response-stream)$")
BAD_SIGNATURE = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret "
    "Access Key and signing method. Consult the service documentation for details."
)


@dataclass
class CloudReply:
    """A scripted answer: an HTTP error, or Anthropic SSE to frame (whole `sse`, or `build`
    from what arrived), optionally cut by an exception frame after `exception_after` events."""

    status: int = 200
    error: tuple[str, str] | None = None  # (exception name, message) of an HTTP error
    sse: bytes | None = None
    build: Callable[[Received], bytes] | None = None
    exception: tuple[str, str] | None = None  # (exceptionType, message) of an in-stream exception
    exception_after: int = 0
    corrupt_crc: bool = False  # flip a bit of the second frame's payload (its message CRC fails)


def verify_sigv4(method: str, url: str, headers: list[tuple[str, str]], body: bytes, region: str) -> str | None:
    """Why a request's SigV4 signature is not valid for the test credentials; None when it is."""
    got = {k.lower(): v for k, v in headers}
    match = _AUTH.match(got.get("authorization", ""))
    if match is None:
        return "missing or malformed AWS4-HMAC-SHA256 Authorization header"
    if match["key"] != ACCESS_KEY:
        return "The security token included in the request is invalid."
    if match["region"] != region or match["service"] != "bedrock":
        return f"Credential should be scoped to a valid region and service ({region}/bedrock)"
    amz_date = got.get("x-amz-date", "")
    try:
        when = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
    except ValueError:
        return "missing or malformed X-Amz-Date"
    if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300 or amz_date[:8] != match["date"]:
        return "Signature expired or its date does not match the credential scope"
    signed = match["signed"].split(";")
    if "host" not in signed or "x-amz-date" not in signed:
        return "SignedHeaders must include host and x-amz-date"
    request = AWSRequest(method=method, url=url, data=body, headers={name: got.get(name, "") for name in signed})
    request.context["timestamp"] = amz_date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if not secrets.compare_digest(expected, match["signature"]):
        return BAD_SIGNATURE
    return None


def chunk_frame(event_json: bytes, rng: random.Random, metrics: dict[str, int] | None = None) -> bytes:
    if metrics is not None:
        doc = json.loads(event_json)
        doc["amazon-bedrock-invocationMetrics"] = metrics
        event_json = json.dumps(doc, separators=(",", ":")).encode()
    padding = "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(rng.randint(0, 24))
    )
    payload = json.dumps({"bytes": base64.b64encode(event_json).decode(), "p": padding}).encode()
    return encode_message(
        (
            Header.string(":event-type", "chunk"),
            Header.string(":content-type", "application/json"),
            Header.string(":message-type", "event"),
        ),
        payload,
    )


def exception_frame(name: str, message: str) -> bytes:
    return encode_message(
        (
            Header.string(":exception-type", name),
            Header.string(":content-type", "application/json"),
            Header.string(":message-type", "exception"),
        ),
        json.dumps({"message": message}).encode(),
    )


def sse_events(data: bytes) -> list[bytes]:
    """The data JSON of each event of an Anthropic SSE body."""
    return [payload.encode() for _, payload in parse_events(data) if payload.strip()]


class BedrockSimulator:
    def __init__(self, region: str = "eu-central-1", api_key: str | None = None, seed: int = 0) -> None:
        self.region = region
        self.api_key = api_key
        self.received: list[Received] = []
        self.models: list[str] = []  # the model id of each request, decoded from the path
        self.replies: deque[CloudReply] = deque()
        self.rng = random.Random(seed)
        self.port = 0
        self._server: LoopbackServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def enqueue(self, reply: CloudReply) -> None:
        with self._lock:
            self.replies.append(reply)

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.models.clear()
            self.replies.clear()

    def start(self) -> BedrockSimulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = LoopbackServer(app, "bedrock-simulator", handler_cancellation=True)
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    @staticmethod
    def _error(status: int, name: str, message: str) -> web.Response:
        return web.json_response(
            {"message": message},
            status=status,
            headers={"x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazon.bedrock/"},
        )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        record = Received(request.method, request.raw_path.split("?", 1)[0], request.query_string, headers, body)
        with self._lock:
            self.received.append(record)
        match = _PATH.match(record.path)
        if request.method != "POST" or match is None:
            return self._error(404, "UnknownOperationException", f"no operation at {request.method} {record.path}")
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            if self.api_key is None or not secrets.compare_digest(auth[7:], self.api_key):
                return self._error(
                    403, "AccessDeniedException", "Invalid API Key format: Must start with pre-defined prefix"
                )
        else:
            problem = verify_sigv4("POST", f"http://{request.host}{request.raw_path}", headers, body, self.region)
            if problem is not None:
                name = "InvalidSignatureException" if problem == BAD_SIGNATURE else "UnrecognizedClientException"
                return self._error(403, name, problem)
        model = unquote(match["model"])
        try:
            doc = json.loads(body)
        except json.JSONDecodeError:
            return self._error(
                400, "ValidationException", "Malformed input request, please reformat your input and try again."
            )
        unknown = [b for b in doc.get("anthropic_beta", []) if b not in KNOWN_BETAS]
        if unknown:
            return self._error(400, "ValidationException", f"invalid beta flag: {unknown[0]}")
        extra = [k for k in ("model", "stream") if k in doc]
        if extra or doc.get("anthropic_version") != "bedrock-2023-05-31":
            what = f"{extra[0]}: Extra inputs are not permitted" if extra else "anthropic_version: invalid or missing"
            return self._error(400, "ValidationException", f"Malformed input request: {what}")
        with self._lock:
            self.models.append(model)
            scripted = self.replies.popleft() if self.replies else None
        reply = scripted or CloudReply()
        if reply.error is not None:
            return self._error(reply.status, *reply.error)
        if reply.build is not None:
            data = reply.build(record)
        elif reply.sse is not None:
            data = reply.sse
        else:
            name = request.headers.get("x-sim-fixture", "anthropic-messages/basic_response.sse")
            data = (fixtures_dir() / name).read_bytes()
        if match["op"] == "invoke":
            return web.json_response(assemble_anthropic(data), headers={"x-amzn-RequestId": "sim-request"})
        return await self._stream(request, reply, sse_events(data))

    async def _stream(self, request: web.Request, reply: CloudReply, events: list[bytes]) -> web.StreamResponse:
        with self._lock:
            rng = random.Random(self.rng.random())
        frames = []
        for i, event in enumerate(events):
            if reply.exception is not None and i == reply.exception_after:
                frames.append(exception_frame(*reply.exception))
                break
            last = i == len(events) - 1
            metrics = {"inputTokenCount": 12, "outputTokenCount": 34, "invocationLatency": 56, "firstByteLatency": 7}
            frames.append(chunk_frame(event, rng, metrics if last else None))
        if reply.corrupt_crc and len(frames) > 1:
            frame = frames[1]
            frames[1] = frame[:-6] + bytes([frame[-6] ^ 0x40]) + frame[-5:]
        response = web.StreamResponse(
            status=200,
            headers={"content-type": "application/vnd.amazon.eventstream", "x-amzn-RequestId": "sim-request"},
        )
        await response.prepare(request)
        for piece in split_random(b"".join(frames), rng, max_pieces=30):
            await response.write(piece)
            await asyncio.sleep(0)
        await response.write_eof()
        return response


def anthropic_sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events)
