"""Durations as written on the command line: one whole number and one unit, round-trip stable."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egress.core.durations import MAX_SECONDS, UNITS, DurationError, format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("12h", 43_200), ("30d", 2_592_000), ("2w", 1_209_600), ("1s", 1)],
)
def test_examples(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    [
        "",
        "30",
        "d",
        "30 d",
        " 30d",
        "30d ",
        "1h30m",
        "-5m",
        "+5m",
        "1.5h",
        "0s",
        "0d",
        "30D",
        "30y",
        "１d",
        "99999999999s",
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(DurationError):
        parse_duration(text)


def test_longer_than_ten_years_refused() -> None:
    with pytest.raises(DurationError, match="ten years"):
        parse_duration(f"{MAX_SECONDS // 86_400 + 1}d")


@given(st.integers(min_value=1, max_value=MAX_SECONDS))
def test_format_then_parse_round_trips(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(sorted(UNITS)))
def test_parse_is_number_times_unit(number: int, unit: str) -> None:
    seconds = number * UNITS[unit]
    if seconds > MAX_SECONDS:
        with pytest.raises(DurationError):
            parse_duration(f"{number}{unit}")
    else:
        assert parse_duration(f"{number}{unit}") == seconds


@given(st.text(max_size=12))
def test_any_text_parses_or_raises_duration_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except DurationError:
        return
    assert 0 < seconds <= MAX_SECONDS
    assert text[-1] in UNITS and text[:-1].isascii() and text[:-1].isdigit()
