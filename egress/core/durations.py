"""Durations as people write them on the command line: `90s`, `15m`, `12h`, `30d`, `2w`.

One number (digits only) and one unit, nothing else: no signs, no fractions, no spaces, no
combinations (`1h30m`), so a value means exactly one thing. `parse_duration` and
`format_duration` round-trip: `parse_duration(format_duration(s)) == s` for every whole number
of seconds s > 0 (tests/unit/core/test_durations.py holds it with generated values).
"""

from __future__ import annotations

import re

# Seconds per unit, largest first (format_duration picks the largest unit that divides).
UNITS: dict[str, int] = {"w": 7 * 86_400, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
# Ten years: a longer lifetime is a typo, not a policy.
MAX_SECONDS = 10 * 365 * 86_400
_SHAPE = re.compile(r"([0-9]{1,9})([wdhms])")


class DurationError(ValueError):
    """A duration that does not read as <digits><unit>; the message says what is accepted."""


def parse_duration(text: str) -> int:
    """Whole seconds, > 0 and at most MAX_SECONDS. Raises DurationError."""
    match = _SHAPE.fullmatch(text)
    if match is None:
        raise DurationError(
            f"{text[:20]!r} is not a duration: write a whole number and one unit, s, m, h, d or w (90s, 15m, 30d)"
        )
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    if seconds <= 0:
        raise DurationError("a duration must be longer than zero")
    if seconds > MAX_SECONDS:
        raise DurationError("a duration may be at most ten years")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest spelling `parse_duration` reads back as `seconds` (> 0)."""
    if seconds <= 0:
        raise DurationError("a duration must be longer than zero")
    for unit, size in UNITS.items():
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: every whole number of seconds divides by 1")
