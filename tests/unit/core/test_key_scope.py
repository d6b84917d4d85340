"""A key's scope: each dimension narrows, empty means any, and an unreadable scope never widens."""

from __future__ import annotations

import pytest

from egress.core.key_scope import UNSCOPED, KeyScope


def test_unscoped_allows_everything() -> None:
    assert UNSCOPED.unrestricted
    assert UNSCOPED.allows_api("openai.responses") and UNSCOPED.allows_model("x") and UNSCOPED.allows_endpoint("e")
    assert UNSCOPED.describe() == "any"


def test_apis_by_full_value_or_short_name() -> None:
    scope = KeyScope(apis=("messages", "openai.responses"))
    assert scope.allows_api("anthropic.messages")
    assert scope.allows_api("openai.responses")
    assert not scope.allows_api("openai.chat_completions")
    assert not scope.allows_api("anthropic.count_tokens")
    assert not scope.allows_api("openai.responses_compact")


def test_models_are_shell_patterns_case_sensitive() -> None:
    scope = KeyScope(models=("claude-*", "gpt-5"))
    assert scope.allows_model("claude-sonnet-4-5")
    assert scope.allows_model("gpt-5")
    assert not scope.allows_model("gpt-5-mini")
    assert not scope.allows_model("CLAUDE-x")


def test_endpoints_by_name() -> None:
    scope = KeyScope(endpoints=("eu",))
    assert scope.allows_endpoint("eu") and not scope.allows_endpoint("us")


def test_json_round_trip_and_description() -> None:
    scope = KeyScope(apis=("messages",), models=("claude-*",), endpoints=("eu", "own"))
    assert KeyScope.from_json(scope.as_json()) == scope
    assert scope.describe() == "apis=messages models=claude-* endpoints=eu,own"
    assert KeyScope.from_json(None) is UNSCOPED
    assert KeyScope.from_json({"models": "claude-* gpt-5"}) == KeyScope(models=("claude-*", "gpt-5"))


@pytest.mark.parametrize(
    "raw",
    [[], "apis", {"api": ["messages"]}, {"apis": [1]}, {"apis": [""]}, {"models": {"x": 1}}],
)
def test_unreadable_scope_raises(raw: object) -> None:
    with pytest.raises(ValueError):
        KeyScope.from_json(raw)
