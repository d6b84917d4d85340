"""Which terms a client's own credential falls under: real-format samples of each credential type,
generated here to the documented shapes (our own random data), classified from format and
headers alone; the facts come from the bundled catalog's `plans:` section."""

from __future__ import annotations

import base64
import random
import string
import uuid

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.core.credentials import Plan
from egress.identity.plans import CredentialClassifier, bundled_plans, parse_plans

URLSAFE = string.ascii_letters + string.digits + "-_"
RNG = random.Random(20)


def rand(alphabet: str, n: int) -> str:
    return "".join(RNG.choice(alphabet) for _ in range(n))


def anthropic_api_key() -> str:
    return "sk-ant-api03-" + rand(URLSAFE, 93) + "AA"  # 108 characters, as the Console issues them


def anthropic_oauth_token() -> str:
    return "sk-ant-oat01-" + rand(URLSAFE, 93) + "AA"  # a claude.ai sign-in's access token


def openai_project_key() -> str:
    return "sk-proj-" + rand(URLSAFE, 156)


def openai_service_account_key() -> str:
    return "sk-svcacct-" + rand(URLSAFE, 156)


def openai_user_key() -> str:
    return (
        "sk-"
        + rand(string.ascii_letters + string.digits, 20)
        + "T3BlbkFJ"
        + rand(string.ascii_letters + string.digits, 20)
    )


def b64(doc: dict) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()


def chatgpt_token(plan_type: str | None = "plus", account: str | None = None) -> str:
    """A JWT shaped like a ChatGPT sign-in's access token (random signature: never verified here)."""
    auth: dict = {"chatgpt_account_id": account or str(uuid.UUID(int=RNG.getrandbits(128)))}
    if plan_type is not None:
        auth["chatgpt_plan_type"] = plan_type
    payload = {"iss": "https://auth.openai.com", "aud": ["https://api.openai.com/v1"], "exp": 2_000_000_000,
               "https://api.openai.com/auth": auth}  # fmt: skip
    return ".".join([b64({"alg": "RS256", "typ": "JWT", "kid": rand(URLSAFE, 12)}), b64(payload), rand(URLSAFE, 342)])


def gemini_api_key() -> str:
    return "AIza" + rand(URLSAFE, 35)


def google_oauth_token() -> str:
    return "ya29." + rand(URLSAFE, 180)


def azure_key() -> str:
    return rand("0123456789abcdef", 32)


@pytest.fixture(scope="module")
def classifier() -> CredentialClassifier:
    return CredentialClassifier(bundled_plans())


def classify(c: CredentialClassifier, headers: list[tuple[str, str]], query: str = "", skip: bytes | None = None):
    return c.classify([(k.encode(), v.encode()) for k, v in headers], query, skip)


CASES = [
    ("anthropic API key in x-api-key", [("x-api-key", anthropic_api_key())], Plan.API, "anthropic_api_key", "anthropic"),
    ("anthropic API key as bearer", [("authorization", "Bearer " + anthropic_api_key())], Plan.API, "anthropic_api_key", "anthropic"),
    ("Claude subscription sign-in", [("authorization", "Bearer " + anthropic_oauth_token()), ("anthropic-beta", "claude-code-20250219,oauth-2025-04-20")], Plan.CONSUMER, "anthropic_oauth", "anthropic"),
    ("Claude sign-in without the beta header", [("authorization", "Bearer " + anthropic_oauth_token())], Plan.CONSUMER, "anthropic_oauth", "anthropic"),
    ("OpenAI project key", [("authorization", "Bearer " + openai_project_key())], Plan.API, "openai_project_key", "openai"),
    ("OpenAI service account key", [("authorization", "Bearer " + openai_service_account_key())], Plan.API, "openai_service_account_key", "openai"),
    ("OpenAI user key", [("authorization", "Bearer " + openai_user_key())], Plan.API, "openai_user_key", "openai"),
    ("ChatGPT Plus sign-in (Codex CLI)", [("authorization", "Bearer " + chatgpt_token("plus")), ("chatgpt-account-id", str(uuid.uuid4()))], Plan.CONSUMER, "chatgpt_oauth", "openai"),
    ("ChatGPT Pro sign-in without account header", [("authorization", "Bearer " + chatgpt_token("pro"))], Plan.CONSUMER, "chatgpt_oauth", "openai"),
    ("ChatGPT sign-in without a plan claim", [("authorization", "Bearer " + chatgpt_token(None)), ("chatgpt-account-id", "a")], Plan.CONSUMER, "chatgpt_oauth", "openai"),
    ("ChatGPT Enterprise sign-in", [("authorization", "Bearer " + chatgpt_token("enterprise")), ("chatgpt-account-id", "a")], Plan.ENTERPRISE, "chatgpt_oauth", "openai"),
    ("ChatGPT Team sign-in", [("authorization", "Bearer " + chatgpt_token("team")), ("chatgpt-account-id", "a")], Plan.ENTERPRISE, "chatgpt_oauth", "openai"),
    ("Gemini API key header", [("x-goog-api-key", gemini_api_key())], Plan.API, "gemini_api_key", "google"),
    ("Google account token", [("authorization", "Bearer " + google_oauth_token())], Plan.CONSUMER, "google_oauth", "google"),
    ("Azure OpenAI key", [("api-key", azure_key())], Plan.API, "azure_openai_key", "azure-openai"),
    ("an opaque bearer", [("authorization", "Bearer " + rand(URLSAFE, 40))], Plan.UNKNOWN, "unrecognised", None),
    ("basic auth", [("authorization", "Basic " + rand(URLSAFE, 20))], Plan.UNKNOWN, "unrecognised", None),
    ("a JWT that is not ChatGPT's", [("authorization", "Bearer " + ".".join([b64({"alg": "RS256"}), b64({"sub": "x"}), "sig"]))], Plan.UNKNOWN, "unrecognised", None),
]  # fmt: skip


@pytest.mark.parametrize(("what", "headers", "plan", "kind", "provider"), CASES, ids=[c[0] for c in CASES])
def test_each_credential_type(classifier, what, headers, plan, kind, provider) -> None:
    found = classify(classifier, headers)
    assert found is not None
    assert (found.plan, found.type, found.provider) == (plan, kind, provider)
    secret = headers[0][1].split()[-1]
    assert secret not in repr(found)  # a class is a label and facts, never the credential


def test_gemini_key_in_the_query(classifier) -> None:
    found = classify(classifier, [], query="alt=sse&key=" + gemini_api_key())
    assert found is not None and (found.plan, found.type) == (Plan.API, "gemini_api_key")


def test_no_credential_is_none(classifier) -> None:
    assert classify(classifier, [("content-type", "application/json"), ("anthropic-beta", "oauth-2025-04-20")]) is None


def test_the_gateway_credential_header_is_skipped(classifier) -> None:
    headers = [("x-api-key", "egk_" + rand(URLSAFE, 43)), ("authorization", "Bearer " + anthropic_oauth_token())]
    found = classify(classifier, headers, skip=b"x-api-key")
    assert found is not None and found.plan is Plan.CONSUMER
    # The gateway key alone: no provider credential at all.
    assert classify(classifier, headers[:1], skip=b"x-api-key") is None


def test_the_most_restrictive_credential_wins(classifier) -> None:
    """An API key beside a sign-in token does not loosen the terms, in either order."""
    api, oauth = ("x-api-key", anthropic_api_key()), ("authorization", "Bearer " + anthropic_oauth_token())
    for headers in ([api, oauth], [oauth, api]):
        found = classify(classifier, headers)
        assert found is not None and found.plan is Plan.CONSUMER


def test_facts_come_from_the_catalog(classifier) -> None:
    api = classify(classifier, [("x-api-key", anthropic_api_key())])
    consumer = classify(classifier, [("authorization", "Bearer " + anthropic_oauth_token())])
    assert api.facts is not None and api.facts.trains_on_data is False and api.facts.dpa is True
    assert consumer.facts is not None and consumer.facts.trains_on_data is True and consumer.facts.dpa is False
    assert consumer.facts.source.startswith("https://")
    unknown = classify(classifier, [("authorization", "Bearer opaque")])
    assert unknown.facts is None


def test_bundled_plans_have_sources_and_each_plan_of_the_three_providers() -> None:
    plans = bundled_plans()
    assert {("anthropic", Plan.API), ("anthropic", Plan.CONSUMER), ("openai", Plan.API), ("openai", Plan.CONSUMER),
            ("openai", Plan.ENTERPRISE), ("google", Plan.API), ("google", Plan.CONSUMER)} <= set(plans)  # fmt: skip
    for entry in plans.values():
        assert entry.source.startswith("https://")
        if entry.trains_on_data is None or entry.retention_days is None or entry.dpa is None:
            assert entry.notes, f"{entry.provider} {entry.plan}: an unknown fact needs a note"


def test_a_duplicate_plan_is_refused() -> None:
    item = {"provider": "x", "plan": "api", "title": "t", "trains_on_data": False, "retention_days": 1, "dpa": True,
            "source": "https://example.org", "as_of": "2026-12-07"}  # fmt: skip
    with pytest.raises(ValueError, match="twice"):
        parse_plans([item, item])
    with pytest.raises(ValueError):
        parse_plans([{**item, "plan": "premium"}])


@given(st.lists(st.tuples(st.sampled_from(["x-api-key", "authorization", "x-goog-api-key", "api-key", "chatgpt-account-id", "anthropic-beta"]),
                          st.binary(max_size=300)), max_size=5), st.text(max_size=60))  # fmt: skip
def test_any_headers_classify_without_error(headers, query) -> None:
    found = CredentialClassifier({}).classify([(k.encode(), v) for k, v in headers], query, None)
    assert found is None or found.plan in Plan
