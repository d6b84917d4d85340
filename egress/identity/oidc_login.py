"""Sign-in to the console with the organisation's identity provider: authorization code + PKCE.

API (the console calls it; it keeps the `PendingLogin` between the two calls, server-side or in
a signed, short-lived cookie — it holds the PKCE verifier, which must not reach the browser)::

    login = OidcLogin(verifier, LoginClient(client_id="egress-console",
                                            redirect_uri="https://egress.example/console/callback"))
    pending = await login.begin()            # redirect the browser to pending.authorize_url
    ...                                      # the IdP redirects back with ?code=…&state=…
    who = await login.finish(pending, state=query["state"], code=query.get("code"),
                             error=query.get("error"))
    who.user, who.team                       # a VerifiedToken, as for the gateway's tokens

`begin` reads the authorization endpoint from the issuer's discovery document and makes a fresh
random `state` (against login CSRF), `nonce` (against ID-token replay) and PKCE verifier (S256).
`finish` checks the returned state in constant time, exchanges the code at the token endpoint
(HTTP Basic client authentication when a client secret is configured; a public client sends
only its id), and verifies the ID token with the gateway's `OidcVerifier` — signature, issuer,
expiry — with the client id as the audience and the pending nonce. Any failure raises
`LoginError` (the sign-in itself went wrong) or `TokenError` (the ID token is refused); neither
message contains a code, a token or a secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import aiohttp

from egress.identity.oidc import OidcVerifier, VerifiedToken
from egress.identity.oidc_terms import require_secure_url

_ERROR_CODE = re.compile(r"^[a-z_]{1,64}$")


class LoginError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class LoginClient:
    client_id: str
    redirect_uri: str
    client_secret: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")


@dataclass(frozen=True, slots=True)
class PendingLogin:
    """One sign-in in progress. `code_verifier` stays on the server side."""

    state: str
    nonce: str
    code_verifier: str = field(repr=False)
    authorize_url: str


def pkce_challenge(code_verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class OidcLogin:
    def __init__(self, verifier: OidcVerifier, client: LoginClient) -> None:
        self.verifier = verifier
        self.client = client

    async def begin(self) -> PendingLogin:
        meta = await self.verifier.metadata()
        endpoint = meta.authorization_endpoint
        if endpoint is None:
            raise LoginError("the identity provider publishes no authorization endpoint")
        _secure(endpoint, "authorization endpoint")
        state, nonce = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        code_verifier = secrets.token_urlsafe(48)  # 64 characters, within RFC 7636's 43..128
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client.client_id,
                "redirect_uri": self.client.redirect_uri,
                "scope": " ".join(self.client.scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in endpoint else "?"
        return PendingLogin(state, nonce, code_verifier, f"{endpoint}{separator}{query}")

    async def finish(
        self, pending: PendingLogin, *, state: str | None, code: str | None, error: str | None = None
    ) -> VerifiedToken:
        if state is None or not hmac.compare_digest(state.encode(), pending.state.encode()):
            raise LoginError("the sign-in's state does not match (start the sign-in again)")
        if error is not None:
            shown = error if _ERROR_CODE.match(error) else "unknown"
            raise LoginError(f"the identity provider refused the sign-in ({shown})")
        if not code:
            raise LoginError("the identity provider returned no authorization code")
        meta = await self.verifier.metadata()
        if meta.token_endpoint is None:
            raise LoginError("the identity provider publishes no token endpoint")
        _secure(meta.token_endpoint, "token endpoint")
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.client.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {}
        if self.client.client_secret is not None:
            # RFC 6749 §2.3.1: id and secret are form-encoded, then sent as HTTP Basic credentials.
            user, password = quote(self.client.client_id, safe=""), quote(self.client.client_secret, safe="")
            headers["authorization"] = aiohttp.encode_basic_auth(user, password)
        else:
            form["client_id"] = self.client.client_id
        answer = await self.verifier.post_form(meta.token_endpoint, form, headers)
        if "error" in answer:
            code_name = answer["error"] if isinstance(answer["error"], str) else ""
            shown = code_name if _ERROR_CODE.match(code_name) else "unknown"
            raise LoginError(f"the token endpoint refused the code ({shown})")
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise LoginError("the token endpoint returned no ID token")
        return await self.verifier.verify(id_token, audience=(self.client.client_id,), nonce=pending.nonce)


def _secure(url: str, what: str) -> None:
    try:
        require_secure_url(url)
    except ValueError:
        raise LoginError(f"the identity provider's {what} is not https") from None
