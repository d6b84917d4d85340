"""One gateway with limits and the console (no Redis: counted in process, the embedded
defaults): a team over its requests per minute gets the native 429 from the official Anthropic
SDK (RateLimitError, retry-after), and the console's Usage page shows what was used against the
team's budget, from the usage rows the gateway wrote in batches; and a Rego policy that reads
input.usage."""

from __future__ import annotations

import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from egress.admin.accounts import Passwords, Role, new_account
from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.support.console import PASSWORD, login
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import UpstreamSimulator


def test_sdk_429_then_usage_page(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        upstream.url,
        limits={
            "teams": {"qa": {"requests_per_minute": 3, "output_tokens_per_day": 1000, "spend_per_month_usd": 5}},
            "flush_interval_s": 0.2,
        },
    )
    config = load_config(path, env=SIM_ENV)
    store = open_configured_store(config)
    secret, key = new_key("quinn", "qa")
    store.create_key(key)
    assert store.console_user_create(new_account(Passwords(), "root", Role.ADMIN, None, PASSWORD))
    gateway = ThreadedGateway(config).start()
    try:
        sdk = anthropic.Anthropic(
            base_url=gateway.url, api_key="sk-ant-client", default_headers={"x-egress-key": secret}, max_retries=0
        )
        for _ in range(3):
            sdk.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.RateLimitError) as refused:
            sdk.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
        assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
        # The same team limit, through the official OpenAI SDK: its own RateLimitError.
        openai_sdk = openai.OpenAI(base_url=gateway.url + "/v1", api_key=secret, max_retries=0)
        with pytest.raises(openai.RateLimitError) as refused_openai:
            openai_sdk.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        assert refused_openai.value.code == "rate_limit_exceeded"
        assert 1 <= int(refused_openai.value.response.headers["retry-after"]) <= 60
        received = len(upstream.received)
        assert received == 3  # the refused ones never left

        # A browser-like client: it sends the Origin a same-origin form would.
        with httpx.Client(base_url=gateway.url, headers={"origin": gateway.url}, timeout=30) as browser:
            assert login(browser, "root", PASSWORD).status_code == 303
            deadline = time.monotonic() + 10
            while True:
                page = browser.get("/admin/usage", params={"team": "qa"})
                if 'data-name="qa"' in page.text or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert page.status_code == 200, page.text
            row = page.text.split('data-scope="team" data-name="qa"')[1].split("</tr>")[0]
            assert "<td>3</td>" in row  # three requests answered
            assert "(– / 1000)" in row and "(5.0)" in row  # set against the team's limits
            assert 'data-name="quinn"' in page.text
            bad = browser.get("/admin/usage", params={"since": "whenever"})
            assert bad.status_code == 400 and "neither a duration" in bad.text
            assert '<a href="/admin/usage">Usage</a>' in browser.get("/admin/traffic").text
    finally:
        gateway.stop()
        store.close()


HALF = "input.usage.team.requests_per_minute.used_percent >= 50"
USAGE_POLICY = f"""package egress
import rego.v1
decision := {{"action": "block", "endpoints": [], "reasons": ["the team used half its requests this minute"]}} if {{
    {HALF}
}}
decision := {{"action": "allow", "endpoints": [c.name | some c in input.candidates]}} if {{
    not {HALF}
}}
"""


def test_the_policy_reads_input_usage(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    """A Rego policy that blocks a team past half its requests per minute: the first request
    (25 % used) passes, the second (50 %) is blocked by the policy, not by the limit."""
    rego = tmp_path / "usage.rego"
    rego.write_text(USAGE_POLICY)
    path = write_config(
        tmp_path,
        upstream.url,
        policy={"files": [str(rego)]},
        limits={"teams": {"qa": {"requests_per_minute": 4}}},
    )
    config = load_config(path, env=SIM_ENV)
    store = open_configured_store(config)
    secret, key = new_key("quinn", "qa")
    store.create_key(key)
    gateway = ThreadedGateway(config).start()
    try:
        sdk = anthropic.Anthropic(
            base_url=gateway.url, api_key="sk-ant-client", default_headers={"x-egress-key": secret}, max_retries=0
        )
        sdk.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(anthropic.PermissionDeniedError) as blocked:
            sdk.messages.create(model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
        assert "half its requests" in str(blocked.value)
        assert len(upstream.received) == 1
    finally:
        gateway.stop()
        store.close()
