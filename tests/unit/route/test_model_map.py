"""Model mapping: which upstream id an endpoint is asked for, given the client's model name."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from egress.core.endpoint import Endpoint
from egress.route.model_map import maps, upstream_model


def endpoint(model_map: dict[str, str] | None = None, upstream: str | None = None) -> Endpoint:
    return Endpoint.model_validate(
        {
            "name": "bedrock-eu",
            "api": "anthropic",
            "base_url": "https://bedrock-runtime.eu-central-1.amazonaws.com",
            "models": ["claude-*"],
            "credentials": {"env": "AWS_BEARER_TOKEN_BEDROCK"},
            "operator": "Amazon Web Services",
            "jurisdiction": "EU",
            "region": "eu-central-1",
            "retention_days": 0,
            "trains_on_api_data": False,
            "dpa": True,
            **({"model_map": model_map} if model_map is not None else {}),
            **({"upstream_model": upstream} if upstream is not None else {}),
        }
    )


def test_no_mapping_sends_the_clients_name() -> None:
    e = endpoint()
    assert upstream_model(e, "claude-sonnet-4-5") == "claude-sonnet-4-5"
    assert not maps(e)


def test_exact_key_wins_over_an_earlier_glob() -> None:
    e = endpoint(
        {
            "claude-sonnet-*": "eu.anthropic.claude-sonnet-4-20250514-v1:0",
            "claude-sonnet-4-5": "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        }
    )
    assert upstream_model(e, "claude-sonnet-4-5") == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert upstream_model(e, "claude-sonnet-4") == "eu.anthropic.claude-sonnet-4-20250514-v1:0"


def test_globs_apply_in_the_order_written() -> None:
    e = endpoint({"claude-opus-*": "opus-id", "claude-*": "catch-all", "claude-haiku-*": "never-reached"})
    assert upstream_model(e, "claude-opus-4-1") == "opus-id"
    assert upstream_model(e, "claude-haiku-4-5") == "catch-all"
    reordered = endpoint({"claude-haiku-*": "haiku-id", "claude-*": "catch-all"})
    assert upstream_model(reordered, "claude-haiku-4-5") == "haiku-id"


def test_glob_forms_question_mark_and_class_and_case() -> None:
    e = endpoint({"gpt-4?": "four-something", "o[34]-mini": "small-reasoner"})
    assert upstream_model(e, "gpt-4o") == "four-something"
    assert upstream_model(e, "gpt-4o-mini") == "gpt-4o-mini"  # `?` is exactly one character
    assert upstream_model(e, "o3-mini") == "small-reasoner"
    assert upstream_model(e, "o1-mini") == "o1-mini"
    assert upstream_model(e, "GPT-4o") == "GPT-4o"  # case-sensitive, on every platform


def test_upstream_model_is_the_fallback_after_the_map() -> None:
    e = endpoint({"claude-haiku-*": "haiku-id"}, upstream="qwen3-coder")
    assert upstream_model(e, "claude-haiku-4-5") == "haiku-id"
    assert upstream_model(e, "claude-sonnet-4-5") == "qwen3-coder"
    assert maps(e)
    assert upstream_model(endpoint(upstream="qwen3-coder"), "anything") == "qwen3-coder"


def test_a_key_that_looks_like_a_glob_matches_its_own_spelling_first() -> None:
    e = endpoint({"claude-[x]": "literal", "claude-?": "glob"})
    assert upstream_model(e, "claude-[x]") == "literal"
    assert upstream_model(e, "claude-x") == "literal"  # and, as a glob, the names it matches
    assert upstream_model(e, "claude-y") == "glob"


@pytest.mark.parametrize("bad", [{"": "x"}, {"claude-*": ""}])
def test_empty_names_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        endpoint(bad)


def test_empty_upstream_model_is_refused() -> None:
    with pytest.raises(ValidationError):
        endpoint(upstream="")


_names = st.text(alphabet="abc-*?", min_size=1, max_size=6)


@given(st.dictionaries(_names, st.text(alphabet="xyz", min_size=1, max_size=3), max_size=5), _names)
def test_lookup_is_the_documented_order(mapping: dict[str, str], model: str) -> None:
    """Against a direct reading of the rule: exact key, then first matching glob, else the name."""
    e = endpoint(mapping)
    if model in mapping:
        expected = mapping[model]
    else:
        globs = [v for k, v in mapping.items() if any(c in k for c in "*?[") and fnmatch.fnmatchcase(model, k)]
        expected = globs[0] if globs else model
    assert upstream_model(e, model) == expected
