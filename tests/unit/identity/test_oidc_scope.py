"""OIDC tokens carry a scope, and a service account, through configured claims."""

from __future__ import annotations

import pytest

from egress.core.errors import EgressError
from egress.core.key_scope import UNSCOPED, CallerKind, KeyScope
from egress.gateway.auth import OidcAuth
from egress.identity.oidc import TokenError, TokenProblem
from egress.identity.token_cache import VerifiedTokenCache


async def test_scope_claim_as_object_or_oauth_string(issuer, make_verifier):
    verifier = await make_verifier(scope_claim="egress_scope", service_account_claim="pipeline")
    as_object = await verifier.verify(issuer.mint(egress_scope={"apis": ["messages"], "models": ["claude-*"]}))
    assert as_object.scope == KeyScope(apis=("messages",), models=("claude-*",))
    assert as_object.service_account is None
    as_string = await verifier.verify(
        issuer.mint(egress_scope="openid email apis:responses models:gpt-* endpoints:eu", pipeline="ci-build")
    )
    assert as_string.scope == KeyScope(apis=("responses",), models=("gpt-*",), endpoints=("eu",))
    assert as_string.service_account == "ci-build"
    assert (await verifier.verify(issuer.mint())).scope is UNSCOPED  # no claim: unscoped, as before


async def test_an_unreadable_scope_claim_refuses_the_token(issuer, make_verifier):
    verifier = await make_verifier(scope_claim="egress_scope")
    with pytest.raises(TokenError) as caught:
        await verifier.verify(issuer.mint(egress_scope={"apis": "messages", "modles": ["x"]}))
    assert caught.value.problem is TokenProblem.BAD_SCOPE


async def test_without_the_setting_the_claim_is_ignored(issuer, make_verifier):
    verifier = await make_verifier()
    assert (await verifier.verify(issuer.mint(egress_scope={"apis": ["messages"]}))).scope is UNSCOPED


async def test_the_gateway_principal_carries_the_tokens_scope_and_kind(issuer, make_verifier):
    verifier = await make_verifier(scope_claim="egress_scope", service_account_claim="pipeline")
    auth = OidcAuth(verifier, VerifiedTokenCache(16, max_age_s=60))
    person = await auth.principal(issuer.mint(egress_scope="models:claude-*"))
    assert (person.kind, person.method, person.scope) == (CallerKind.PERSON, "oidc", KeyScope(models=("claude-*",)))
    pipeline = await auth.principal(issuer.mint(pipeline="deploy", egress_scope={"endpoints": ["eu"]}))
    assert (pipeline.user, pipeline.kind) == ("deploy", CallerKind.SERVICE_ACCOUNT)
    assert pipeline.scope == KeyScope(endpoints=("eu",))
    with pytest.raises(EgressError) as caught:
        await auth.principal(issuer.mint(egress_scope={"apis": 3}))
    assert caught.value.status == 401 and "scope claim" in caught.value.message
