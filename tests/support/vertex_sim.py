"""A Google Vertex AI simulator on loopback that checks what Google checks, for Anthropic models.

- A token endpoint (`POST /token`), where google-auth's service-account flow posts its signed JWT
  (the test's key file names this simulator as `token_uri`): the JWT's RS256 signature is checked
  against the test service account's public key (made at test time, `make_service_account`), and
  its issuer, audience, scope and lifetime; it answers an access token with `expires_in`.
- `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict` and
  `:streamRawPredict`: the bearer token must be one this simulator issued and not expired, the
  project and location its own, the body with `anthropic_version: vertex-2023-10-16` and no
  `model`; refusals in Google's error envelope (401 UNAUTHENTICATED, 400 INVALID_ARGUMENT).
- The answer: recorded Anthropic SSE with Vertex's own `event: vertex_event` added, or the
  assembled message.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.bedrock_sim import CloudReply
from tests.support.loopback import LoopbackServer
from tests.support.simulator import Received, assemble_anthropic, fixtures_dir, split_random

PROJECT = "egress-sim-project"
LOCATION = "europe-west1"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
VERTEX_EVENT = b'event: vertex_event\ndata: {"type":"vertex_event","usage":{"input_tokens":1},"tiers":["std"]}\n\n'


@dataclass(frozen=True)
class ServiceAccount:
    path: Path  # the key file google-auth reads
    email: str
    key_id: str
    public_pem: bytes


def make_service_account(directory: Path, token_uri: str) -> ServiceAccount:
    """A fresh service account: an RSA key made now, written as a Google key file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    email = f"egress-test@{PROJECT}.iam.gserviceaccount.com"
    key_id = secrets.token_hex(20)
    doc = {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": key_id,
        "private_key": pem.decode(),
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "service-account.json"
    path.write_text(json.dumps(doc))
    path.chmod(0o600)
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return ServiceAccount(path, email, key_id, public)


def google_error(status: int, name: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": name}}, status=status)


class VertexSimulator:
    def __init__(self, seed: int = 0, token_lifetime_s: int = 3600) -> None:
        self.account: ServiceAccount | None = None  # set by the test before tokens are asked for
        self.token_lifetime_s = token_lifetime_s
        self.tokens: dict[str, float] = {}  # issued access token -> expiry (epoch seconds)
        self.token_requests = 0
        self.received: list[Received] = []
        self.models: list[str] = []
        self.replies: deque[CloudReply] = deque()
        self.rng = random.Random(seed)
        self.port = 0
        self._server: LoopbackServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    @property
    def base_url(self) -> str:
        """An endpoint's base URL: the API version, project and location."""
        return f"{self.url}/v1/projects/{PROJECT}/locations/{LOCATION}"

    def enqueue(self, reply: CloudReply) -> None:
        with self._lock:
            self.replies.append(reply)

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.models.clear()
            self.replies.clear()

    def start(self) -> VertexSimulator:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/token", self._token)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = LoopbackServer(app, "vertex-simulator", handler_cancellation=True)
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        with self._lock:
            self.token_requests += 1
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or self.account is None:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        assertion = str(form.get("assertion", ""))
        try:
            if jwt.get_unverified_header(assertion).get("kid") != self.account.key_id:
                raise jwt.InvalidTokenError("unknown key id")
            claims = jwt.decode(
                assertion,
                self.account.public_pem,
                algorithms=["RS256"],
                # google-auth's assertion names Google's token endpoint, whichever token_uri it posts to.
                audience=GOOGLE_TOKEN_AUDIENCE,
                issuer=self.account.email,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.InvalidTokenError as exc:
            return web.json_response({"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}, status=400)
        if SCOPE not in str(claims.get("scope", "")).split() or claims["exp"] - claims["iat"] > 3600:
            return web.json_response({"error": "invalid_scope"}, status=400)
        token = "ya29.sim-" + secrets.token_urlsafe(24)
        with self._lock:
            self.tokens[token] = time.time() + self.token_lifetime_s
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime_s, "token_type": "Bearer"})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
        record = Received(request.method, request.path, request.query_string, headers, body)
        with self._lock:
            self.received.append(record)
        auth = request.headers.get("authorization", "")
        with self._lock:
            expiry = self.tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
        if expiry is None or expiry < time.time():
            return google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
            )
        prefix = f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/anthropic/models/"
        model, _, method = request.path.removeprefix(prefix).rpartition(":")
        if (
            request.method != "POST"
            or not request.path.startswith(prefix)
            or method
            not in (
                "rawPredict",
                "streamRawPredict",
            )
        ):
            return google_error(404, "NOT_FOUND", f"no such method: {request.path}")
        try:
            doc = json.loads(body)
        except json.JSONDecodeError:
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if "model" in doc or doc.get("anthropic_version") != "vertex-2023-10-16":
            return google_error(
                400, "INVALID_ARGUMENT", "anthropic_version must be vertex-2023-10-16; model goes in the path"
            )
        with self._lock:
            self.models.append(model)
            reply = self.replies.popleft() if self.replies else CloudReply()
        if reply.error is not None:
            return google_error(reply.status, *reply.error)
        if reply.build is not None:
            data = reply.build(record)
        elif reply.sse is not None:
            data = reply.sse
        else:
            name = request.headers.get("x-sim-fixture", "anthropic-messages/basic_response.sse")
            data = (fixtures_dir() / name).read_bytes()
        if not data.endswith(b"\n\n"):
            data = data.rstrip(b"\n") + b"\n\n"
        if method == "rawPredict" or not doc.get("stream"):
            return web.json_response(assemble_anthropic(data))
        # Vertex adds its own event before the end: clients must never see it.
        cut = data.rfind(b"event: message_stop")
        data = data[:cut] + VERTEX_EVENT + data[cut:] if cut >= 0 else data + VERTEX_EVENT
        response = web.StreamResponse(status=200, headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        with self._lock:
            pieces = split_random(data, self.rng, max_pieces=30)
        for piece in pieces:
            await response.write(piece)
            await asyncio.sleep(0)
        await response.write_eof()
        return response
