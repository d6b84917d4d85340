"""The `limits:` section: what it accepts and refuses, through the configuration loader; the
catalog's prices are all valid and dated."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from egress.config import ConfigError, load_config
from egress.limits.prices import PriceBook
from egress.limits.settings import LimitSet, LimitsSettings

PROVIDERS = """
providers:
  - {name: anthropic, catalog: anthropic, credentials: {passthrough: true}}
"""


def write(tmp_path: Path, limits: str) -> Path:
    path = tmp_path / "egress.yaml"
    path.write_text(f"data_dir: {tmp_path}\n{PROVIDERS}\n{limits}")
    return path


def test_the_issue_example_loads(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            "limits: {default: {requests_per_minute: 600}, teams: {qa: {requests_per_minute: 5, output_tokens_per_day: 200000}}}",
        )
    )
    assert config.limits.default.requests_per_minute == 600
    assert config.limits.teams["qa"] == LimitSet(requests_per_minute=5, output_tokens_per_day=200_000)


@pytest.mark.parametrize(
    "bad",
    [
        "limits: {default: {requests_per_minute: 0}}",
        "limits: {teams: {qa: {requests_per_minute: -3}}}",
        "limits: {teams: {qa: {requests_per_hour: 3}}}",
        "limits: {users: {alice: {spend_per_month_usd: 0}}}",
        "limits: {fallback_share: 0}",
        "limits: {prices: {m: {input_per_mtok: -1, output_per_mtok: 1}}}",
        "limits: {prices: {m: {input_per_mtok: 1, output_per_mtok: 1, as_of: 'last week'}}}",
        "limits: {teams: {'': {requests_per_minute: 3}}}",
    ],
)
def test_bad_limits_are_refused_with_their_place(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, bad))
    assert "limits" in str(raised.value)


def test_a_users_entry_overrides_the_default_field_by_field() -> None:
    s = LimitsSettings(default=LimitSet(requests_per_minute=10, output_tokens_per_day=5))
    mine = LimitSet(requests_per_minute=99).over(s.default)
    assert mine == LimitSet(requests_per_minute=99, output_tokens_per_day=5)
    with pytest.raises(ValidationError):
        LimitSet(requests_per_minute=1.5)  # type: ignore[arg-type]


def test_the_catalog_prices_are_valid_sourced_and_dated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    raw = config.provider_catalog.prices
    assert len(raw) >= 10
    assert all(p.get("source", "").startswith("https://") and p.get("as_of") for p in raw)
    book = PriceBook.of(raw, {})
    for model in ("claude-sonnet-4-5-20250929", "gpt-5", "gpt-4o-mini", "gemini-2.5-pro"):
        assert book.price(model) is not None, model
