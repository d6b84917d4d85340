"""The console's sign-in (authorization code + PKCE) against the loopback issuer: the browser's
round trip is played with a real HTTP client that stops at the redirect back."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.identity.oidc import TokenError, TokenProblem
from egress.identity.oidc_login import LoginClient, LoginError, OidcLogin, PendingLogin, pkce_challenge

REDIRECT = "http://127.0.0.1:1/admin/oidc/callback"
URL_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


async def browser(pending: PendingLogin) -> dict[str, str]:
    """Follow the authorize URL as a browser would, up to the redirect back: its query."""
    async with aiohttp.ClientSession() as session:
        async with session.get(pending.authorize_url, allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
            target = resp.headers["location"]
    assert target.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}


@pytest.fixture
async def login(issuer, make_verifier):
    issuer.clients["egress-console"] = None  # a public client: PKCE only
    return OidcLogin(await make_verifier(), LoginClient(client_id="egress-console", redirect_uri=REDIRECT))


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", min_size=43, max_size=128))
def test_pkce_challenge_is_s256(verifier):
    challenge = pkce_challenge(verifier)
    # SHA-256 is 32 bytes: 43 base64url characters without padding.
    assert len(challenge) == 43 and set(challenge) <= set(URL_SAFE)
    padded = challenge + "="
    assert base64.urlsafe_b64decode(padded) == hashlib.sha256(verifier.encode()).digest()


async def test_sign_in_round_trip(login, issuer):
    pending = await login.begin()
    query = parse_qs(urlsplit(pending.authorize_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"] == [pkce_challenge(pending.code_verifier)]
    assert query["state"] == [pending.state] and query["nonce"] == [pending.nonce]
    assert "openid" in query["scope"][0].split()
    back = await browser(pending)
    who = await login.finish(pending, state=back["state"], code=back["code"])
    assert (who.user, who.team) == ("dana@example.org", "payments")
    assert who.claims["aud"] == "egress-console" and who.claims["nonce"] == pending.nonce
    # Every sign-in has its own state, nonce and verifier.
    other = await login.begin()
    assert {other.state, other.nonce, other.code_verifier}.isdisjoint({pending.state, pending.nonce, pending.code_verifier})


async def test_a_wrong_state_is_refused_before_the_code_is_used(login, issuer):
    pending = await login.begin()
    back = await browser(pending)
    with pytest.raises(LoginError, match="state does not match"):
        await login.finish(pending, state="forged", code=back["code"])
    # The code was not spent: the right state still completes.
    assert (await login.finish(pending, state=back["state"], code=back["code"])).user == "dana@example.org"


async def test_a_code_works_once_and_only_with_its_verifier(login, issuer):
    pending = await login.begin()
    back = await browser(pending)
    await login.finish(pending, state=back["state"], code=back["code"])
    with pytest.raises(LoginError, match="invalid_grant"):
        await login.finish(pending, state=back["state"], code=back["code"])
    second = await login.begin()
    back = await browser(second)
    stolen = PendingLogin(second.state, second.nonce, "x" * 64, second.authorize_url)
    with pytest.raises(LoginError, match="invalid_grant") as caught:
        await login.finish(stolen, state=back["state"], code=back["code"])
    assert back["code"] not in caught.value.message


async def test_the_id_token_nonce_must_match(login, issuer):
    pending = await login.begin()
    back = await browser(pending)
    replayed = PendingLogin(pending.state, "another-nonce", pending.code_verifier, pending.authorize_url)
    with pytest.raises(TokenError) as caught:
        await login.finish(replayed, state=back["state"], code=back["code"])
    assert caught.value.problem is TokenProblem.NONCE


async def test_provider_errors_are_reported_without_echoing_input(login):
    pending = await login.begin()
    with pytest.raises(LoginError, match=r"refused the sign-in \(access_denied\)"):
        await login.finish(pending, state=pending.state, code=None, error="access_denied")
    with pytest.raises(LoginError, match=r"\(unknown\)"):
        await login.finish(pending, state=pending.state, code=None, error="<script>alert(1)</script>")
    with pytest.raises(LoginError, match="no authorization code"):
        await login.finish(pending, state=pending.state, code=None)


async def test_a_confidential_client_authenticates_with_its_secret(issuer, make_verifier):
    issuer.clients["egress-console"] = "s3cret-client"
    verifier = await make_verifier()
    good = OidcLogin(verifier, LoginClient("egress-console", REDIRECT, client_secret="s3cret-client"))
    pending = await good.begin()
    back = await browser(pending)
    assert (await good.finish(pending, state=back["state"], code=back["code"])).user == "dana@example.org"
    bad = OidcLogin(verifier, LoginClient("egress-console", REDIRECT, client_secret="wrong"))
    pending = await bad.begin()
    back = await browser(pending)
    with pytest.raises(LoginError, match="invalid_client") as caught:
        await bad.finish(pending, state=back["state"], code=back["code"])
    assert "wrong" not in caught.value.message
