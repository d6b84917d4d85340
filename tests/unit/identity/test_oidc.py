"""OidcVerifier against a real issuer on loopback: only a valid token passes, each refusal says
precisely why without quoting the token, and the JWKS is cached, refetched on rotation and never
hammered."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from egress.identity.oidc import OidcVerifier, TokenError, TokenProblem, looks_like_jwt
from egress.identity.settings import OidcSettings
from tests.support.oidc_issuer import LocalIssuer, b64url, new_key, unsigned_token


async def test_a_valid_token_gives_user_team_and_token_id(issuer, make_verifier):
    verifier = await make_verifier()
    token = issuer.mint(jti="tok-42")
    verified = await verifier.verify(token)
    assert (verified.user, verified.team, verified.subject, verified.token_id) == (
        "dana@example.org",
        "payments",
        "u-1001",
        "tok-42",
    )
    assert verified.claims["groups"] == ["payments", "staff"]


# Each refusal: how to make the token, and the problem the verifier must name.
REFUSALS: dict[str, Callable[[LocalIssuer, float], tuple[str, TokenProblem]]] = {
    "expired": lambda issuer, now: (issuer.mint(exp=int(now) - 3600, iat=int(now) - 7200), TokenProblem.EXPIRED),
    "not yet valid": lambda issuer, now: (issuer.mint(nbf=int(now) + 3600), TokenProblem.NOT_YET_VALID),
    "issued in the future": lambda issuer, now: (issuer.mint(iat=int(now) + 3600), TokenProblem.NOT_YET_VALID),
    "wrong audience": lambda issuer, now: (issuer.mint(aud="someone-else"), TokenProblem.AUDIENCE),
    "no audience": lambda issuer, now: (issuer.mint(aud=None), TokenProblem.MISSING_CLAIM),
    "wrong issuer": lambda issuer, now: (issuer.mint(iss="https://idp.attacker.example"), TokenProblem.ISSUER),
    "no expiry": lambda issuer, now: (issuer.mint(exp=None), TokenProblem.MISSING_CLAIM),
    "wrong key, same kid": lambda issuer, now: (issuer.mint(key=new_key(issuer.keys[0].kid)), TokenProblem.BAD_SIGNATURE),
    "unknown kid": lambda issuer, now: (issuer.mint(key=new_key("not-published")), TokenProblem.UNKNOWN_KEY),
    "alg none": lambda issuer, now: (issuer.forge_alg_none(), TokenProblem.ALGORITHM),
    "alg none with a signature": lambda issuer, now: (
        unsigned_token({"alg": "none", "kid": issuer.keys[0].kid}, issuer.claims(), b"x" * 32),
        TokenProblem.ALGORITHM,
    ),
    "HS256 keyed with the public key": lambda issuer, now: (issuer.forge_hs256_with_public_key(), TokenProblem.ALGORITHM),
    "ES256 header on an RSA kid": lambda issuer, now: (
        unsigned_token({"alg": "ES256", "kid": issuer.keys[0].kid}, issuer.claims(), b"x" * 64),
        TokenProblem.UNKNOWN_KEY,
    ),
    "garbage": lambda issuer, now: ("not-a-token", TokenProblem.MALFORMED),
    "three parts of garbage": lambda issuer, now: ("abc.def.ghi", TokenProblem.MALFORMED),
    "header not an object": lambda issuer, now: (f"{b64url(b'[1]')}.{b64url(b'{}')}.{b64url(b'sig')}", TokenProblem.MALFORMED),
    "no user claim": lambda issuer, now: (issuer.mint(sub=None, email=None), TokenProblem.NO_USER),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_only_the_valid_token_passes(issuer, make_verifier, clock, case):
    verifier = await make_verifier()
    token, problem = REFUSALS[case](issuer, clock.now)
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token)
    assert caught.value.problem is problem, caught.value.message
    # The message never quotes the token or any part of it.
    for part in [token, *[p for p in token.split(".") if len(p) > 8]]:
        assert part not in caught.value.message and part not in str(caught.value)
    # The same verifier still accepts a valid token afterwards.
    assert (await verifier.verify(issuer.mint())).user == "dana@example.org"


async def test_clock_skew_is_bounded_by_the_leeway(issuer, make_verifier, clock):
    token = issuer.mint(exp=int(clock.now) + 100)
    strict, lenient = await make_verifier(leeway_s=0), await make_verifier(leeway_s=60)
    clock.now += 130  # 30 s past expiry
    with pytest.raises(TokenError) as caught:
        await strict.verify(token)
    assert caught.value.problem is TokenProblem.EXPIRED
    assert (await lenient.verify(token)).user == "dana@example.org"
    clock.now += 60  # 90 s past expiry: beyond the leeway
    with pytest.raises(TokenError):
        await lenient.verify(token)
    early = issuer.mint(nbf=int(clock.now) + 30)
    assert (await lenient.verify(early)).user == "dana@example.org"
    with pytest.raises(TokenError) as caught:
        await strict.verify(early)
    assert caught.value.problem is TokenProblem.NOT_YET_VALID


async def test_audience_may_be_a_list_and_several_may_be_accepted(issuer, make_verifier):
    verifier = await make_verifier(audience=("egress", "egress-staging"))
    assert (await verifier.verify(issuer.mint(aud=["other-api", "egress-staging"]))).user
    with pytest.raises(TokenError) as caught:
        await verifier.verify(issuer.mint(aud=["other-api", "more"]))
    assert caught.value.problem is TokenProblem.AUDIENCE


async def test_claim_mapping_is_configurable(issuer, make_verifier):
    verifier = await make_verifier(user_claim="preferred_username", team_claim="department")
    verified = await verifier.verify(issuer.mint(preferred_username="dana", department="platform"))
    assert (verified.user, verified.team) == ("dana", "platform")
    with pytest.raises(TokenError) as caught:
        await verifier.verify(issuer.mint())  # no preferred_username: no fallback to email
    assert caught.value.problem is TokenProblem.NO_USER
    default = await make_verifier()
    no_email = await default.verify(issuer.mint(email=None, groups="solo-team"))
    assert (no_email.user, no_email.team) == ("u-1001", "solo-team")
    assert (await default.verify(issuer.mint(groups=[]))).team is None


async def test_required_claims(issuer, make_verifier):
    verifier = await make_verifier(required_claims=("groups",))
    assert await verifier.verify(issuer.mint())
    with pytest.raises(TokenError) as caught:
        await verifier.verify(issuer.mint(groups=None))
    assert caught.value.problem is TokenProblem.MISSING_CLAIM and "groups" in caught.value.message


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "PS256"])
async def test_other_asymmetric_algorithms(issuer, make_verifier, alg):
    key = new_key(f"k-{alg}", alg)
    issuer.publish(key)
    verifier = await make_verifier()
    assert (await verifier.verify(issuer.mint(key=key))).user == "dana@example.org"
    restricted = await make_verifier(algorithms=("RS256",))
    with pytest.raises(TokenError) as caught:
        await restricted.verify(issuer.mint(key=key))
    assert caught.value.problem is TokenProblem.ALGORITHM


async def test_keys_are_cached_for_their_ttl(issuer, make_verifier, clock):
    verifier = await make_verifier(jwks_cache_s=600)
    for _ in range(5):
        await verifier.verify(issuer.mint())
    assert issuer.jwks_hits == 1
    clock.now += 601
    await verifier.verify(issuer.mint(exp=int(clock.now) + 60, iat=int(clock.now)))
    assert issuer.jwks_hits == 2


async def test_a_rotated_key_is_picked_up_and_bogus_kids_cannot_hammer_the_issuer(issuer, make_verifier, clock):
    verifier = await make_verifier(jwks_refetch_min_s=30)
    await verifier.verify(issuer.mint())
    assert issuer.jwks_hits == 1
    clock.now += 31
    rotated = new_key("key-2")
    issuer.publish(rotated)
    assert (await verifier.verify(issuer.mint(key=rotated))).user == "dana@example.org"
    assert issuer.jwks_hits == 2
    # A flood of unknown kids: at most one refetch per interval.
    for i in range(40):
        with pytest.raises(TokenError) as caught:
            await verifier.verify(issuer.mint(key=new_key(f"bogus-{i}")))
        assert caught.value.problem is TokenProblem.UNKNOWN_KEY
    assert issuer.jwks_hits == 2
    clock.now += 31
    with pytest.raises(TokenError):
        await verifier.verify(issuer.mint(key=new_key("bogus-late")))
    assert issuer.jwks_hits == 3


async def test_jwks_url_skips_discovery_and_a_down_issuer_fails_closed(issuer, make_verifier, clock):
    direct = await make_verifier(jwks_url=issuer.url + "/jwks")
    assert await direct.verify(issuer.mint())
    token = issuer.mint()
    issuer.stop()
    cold = await make_verifier()
    with pytest.raises(TokenError) as caught:
        await cold.verify(token)
    assert caught.value.problem is TokenProblem.KEYS_UNAVAILABLE
    # Keys fetched before the issuer went down serve up to twice their TTL, then no longer.
    clock.now += 700
    assert await direct.verify(issuer.mint(exp=int(clock.now) + 60, iat=int(clock.now)))
    clock.now += 600
    with pytest.raises(TokenError) as caught:
        await direct.verify(issuer.mint(exp=int(clock.now) + 60, iat=int(clock.now)))
    assert caught.value.problem is TokenProblem.KEYS_UNAVAILABLE


async def test_discovery_must_name_the_configured_issuer(issuer, clock):
    verifier = OidcVerifier(OidcSettings(issuer=issuer.url + "/", audience=("egress",)), clock=clock)
    await verifier.start()
    try:
        with pytest.raises(TokenError) as caught:
            await verifier.verify(issuer.mint())
        assert caught.value.problem is TokenProblem.KEYS_UNAVAILABLE
        assert "another issuer" in caught.value.message
    finally:
        await verifier.aclose()


def test_settings_refuse_symmetric_algorithms_and_no_audience():
    with pytest.raises(ValueError):
        OidcSettings(issuer="https://idp.example", audience=("egress",), algorithms=("HS256",))
    with pytest.raises(ValueError):
        OidcSettings(issuer="https://idp.example", audience=())


_B64 = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    token=st.one_of(
        st.text(max_size=200),
        st.tuples(_B64, _B64, _B64).map(".".join),
        st.tuples(st.binary(max_size=80), st.binary(max_size=80), st.binary(max_size=40)).map(
            lambda p: ".".join(b64url(x) for x in p)
        ),
        st.dictionaries(st.sampled_from(["alg", "kid", "typ", "crit"]), st.one_of(st.text(max_size=8), st.integers(-(2**63), 2**63 - 1), st.sampled_from(["RS256", "none", "HS256", "key-1"])),
        )
        .map(lambda h: unsigned_token(h, {"sub": "x"}, b"sig")),
    )
)
async def test_any_input_is_refused_with_a_token_error_only(issuer, make_verifier, token):
    verifier = await make_verifier()
    with pytest.raises(TokenError):
        await verifier.verify(token)


@given(parts=st.lists(_B64, min_size=1, max_size=5), junk=st.sampled_from(["", " ", "=", "+", "/", "é"]))
def test_jwt_shape(parts, junk):
    token = ".".join(parts)
    expected = len(parts) == 3 and bool(parts[0]) and bool(parts[1])
    assert looks_like_jwt(token) is expected
    if junk:
        assert not looks_like_jwt(token + junk)
