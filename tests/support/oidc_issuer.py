"""A local OIDC identity provider on loopback, for the tests: the issuer egress is told to trust.

It serves what a real one does over HTTP — the discovery document, the JWKS (counting how often
it is fetched), `/authorize` (signs the test user in at once and redirects back with a code) and
`/token` (checks the code, the redirect URI, the client and the PKCE verifier, then returns an
ID token) — and mints tokens with keys generated at test time. It also forges the tokens an
attacker would try: `alg: none`, HS256 keyed with the public key, a stranger's key under a
published kid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from tests.support.loopback import LoopbackServer

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@dataclass
class SigningKey:
    kid: str
    alg: str
    private: PrivateKey = field(repr=False)

    def public_jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if self.alg.startswith(("RS", "PS")):
            jwk = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif self.alg.startswith("ES"):
            jwk = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            jwk = OKPAlgorithm.to_jwk(public, as_dict=True)
        return {**jwk, "kid": self.kid, "use": "sig", "alg": self.alg}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def new_key(kid: str, alg: str = "RS256") -> SigningKey:
    if alg.startswith(("RS", "PS")):
        private: PrivateKey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(alg)
    return SigningKey(kid, alg, private)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unsigned_token(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(claims))}.{b64url(signature)}"


@dataclass
class LoginCode:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str
    user: dict[str, Any]


class LocalIssuer:
    """Start with `LocalIssuer(...).start()`; `url` is the issuer (its `iss`)."""

    def __init__(self, audience: str = "egress", user: dict[str, Any] | None = None) -> None:
        self.audience = audience
        self.keys: list[SigningKey] = [new_key("key-1", "RS256")]
        self.user = user or {"sub": "u-1001", "email": "dana@example.org", "groups": ["payments", "staff"]}
        self.clients: dict[str, str | None] = {}  # client id -> secret (None: public client)
        self.jwks_hits = 0
        self.port = 0
        self._codes: dict[str, LoginCode] = {}
        self._server: LoopbackServer | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- tokens -------------------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {
            "iss": self.url,
            "aud": self.audience,
            "iat": now,
            "exp": now + 600,
            "jti": "tok-" + secrets.token_hex(6),
            **self.user,
        }
        base.update(overrides)
        return {k: v for k, v in base.items() if v is not None}

    def mint(self, key: SigningKey | None = None, headers: dict[str, Any] | None = None, **overrides: Any) -> str:
        """A token signed by `key` (default: the first published key)."""
        key = key or self.keys[0]
        return jwt.encode(
            self.claims(**overrides), key.private, algorithm=key.alg, headers={"kid": key.kid, **(headers or {})}
        )

    def forge_alg_none(self, **overrides: Any) -> str:
        return unsigned_token({"alg": "none", "typ": "JWT", "kid": self.keys[0].kid}, self.claims(**overrides))

    def forge_hs256_with_public_key(self, **overrides: Any) -> str:
        """The key-confusion attack: HMAC keyed with the issuer's public key (which anyone has)."""
        key = self.keys[0]
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        body = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(self.claims(**overrides)))}"
        mac = hmac.new(key.public_pem(), body.encode("ascii"), hashlib.sha256).digest()
        return f"{body}.{b64url(mac)}"

    def publish(self, key: SigningKey) -> None:
        with self._lock:
            self.keys.append(key)

    # --- server -------------------------------------------------------------------------------

    def start(self) -> LocalIssuer:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)
        self._server = LoopbackServer(app, "oidc-issuer")
        self.port = self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving (a test may stop it early, to play an unreachable issuer)."""
        if self._server is not None:
            self._server.stop()

    async def _discovery(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": self.url,
                "jwks_uri": self.url + "/jwks",
                "authorization_endpoint": self.url + "/authorize",
                "token_endpoint": self.url + "/token",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        with self._lock:
            self.jwks_hits += 1
            keys = [k.public_jwk() for k in self.keys]
        return web.json_response({"keys": keys})

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" or q.get("client_id") not in self.clients:
            return web.json_response({"error": "invalid_request"}, status=400)
        code = secrets.token_urlsafe(16)
        self._codes[code] = LoginCode(q["client_id"], q["redirect_uri"], q.get("nonce"), q["code_challenge"], self.user)
        raise web.HTTPFound(q["redirect_uri"] + "?" + urlencode({"code": code, "state": q.get("state", "")}))

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        client_id = str(form.get("client_id") or "")
        if request.headers.get("authorization", "").startswith("Basic "):
            decoded = base64.b64decode(request.headers["authorization"][6:]).decode()
            client_id, _, secret = decoded.partition(":")
            if client_id not in self.clients or self.clients[client_id] != secret:
                return web.json_response({"error": "invalid_client"}, status=401)
        elif self.clients.get(client_id, "missing") is not None:
            return web.json_response({"error": "invalid_client"}, status=401)
        login = self._codes.pop(str(form.get("code")), None)
        verifier = str(form.get("code_verifier") or "")
        challenge = b64url(hashlib.sha256(verifier.encode()).digest())
        if (
            login is None
            or login.client_id != client_id
            or login.redirect_uri != form.get("redirect_uri")
            or not hmac.compare_digest(challenge, login.challenge)
        ):
            return web.json_response({"error": "invalid_grant"}, status=400)
        id_token = self.mint(aud=client_id, nonce=login.nonce)
        return web.json_response({"id_token": id_token, "access_token": self.mint(), "token_type": "Bearer"})
