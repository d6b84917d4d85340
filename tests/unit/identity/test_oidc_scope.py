"""OIDC tokens carry a scope, and a service account, through configured claims."""

from __future__ import annotations

import pytest

from egress.core.key_scope import UNSCOPED, KeyScope
from egress.identity.oidc import TokenError, TokenProblem


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
