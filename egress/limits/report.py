"""Consumption against limits, from the stored usage rows: what `egress usage` and the console's
Usage page show. Per team and per user, since a time: requests, tokens and spend, and beside
them today's tokens against the per-day limits and this month's spend against the monthly one."""

from __future__ import annotations

import calendar
import re
import time
from dataclasses import dataclass

from egress.limits.settings import LimitSet, LimitsSettings
from egress.limits.windows import MICRO
from egress.store.base import Store
from egress.store.usage import UsageRow

_DURATION = re.compile(r"^(\d+)([mhd])$")


def parse_since(text: str, now: float) -> float:
    """`7d`, `24h`, `30m`, or a date (2026-12-01) or time (2026-12-01T08:00:00Z), UTC."""
    text = text.strip()
    if m := _DURATION.match(text):
        return now - int(m.group(1)) * {"m": 60, "h": 3600, "d": 86_400}[m.group(2)]
    for fmt in ("%Y-%m-%d", "%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S"):
        try:
            return float(calendar.timegm(time.strptime(text, fmt)))
        except ValueError:
            continue
    raise ValueError(f"{text!r} is neither a duration (7d, 24h, 30m) nor a UTC date or time (2026-12-01)")


def month_start(now: float) -> float:
    t = time.gmtime(now)
    return float(calendar.timegm((t.tm_year, t.tm_mon, 1, 0, 0, 0)))


@dataclass(frozen=True, slots=True)
class UsageLine:
    scope: str  # team | user
    name: str
    requests: int
    input_tokens: int
    output_tokens: int
    spend_usd: float
    today_input: int
    today_output: int
    month_spend_usd: float
    input_per_day: int | None
    output_per_day: int | None
    spend_per_month_usd: float | None

    @staticmethod
    def percent(used: float, limit: float | None) -> str:
        return "" if not limit else f"{100 * used / limit:.0f} %"


def _limits(settings: LimitsSettings, scope: str, name: str) -> LimitSet:
    if scope == "team":
        return settings.teams.get(name, LimitSet())
    own = settings.users.get(name)
    return own.over(settings.default) if own is not None else settings.default


def usage_report(
    store: Store, settings: LimitsSettings, since: float, now: float, team: str | None = None, user: str | None = None
) -> list[UsageLine]:
    """One line per team, then one per user, with rows since `since` (whole days, UTC)."""
    today = now - now % 86_400
    first = min(since - since % 86_400, today, month_start(now))
    rows = store.usage_rows("usage_day", first, team=team, user=user)
    lines: list[UsageLine] = []
    for scope in ("team", "user"):
        names = sorted({(r.team if scope == "team" else r.user) for r in rows} - {""})
        for name in names:
            mine = [r for r in rows if (r.team if scope == "team" else r.user) == name]
            lines.append(_line(scope, name, mine, since, today, month_start(now), _limits(settings, scope, name)))
    return lines


def _line(
    scope: str, name: str, rows: list[UsageRow], since: float, today: float, month: float, limits: LimitSet
) -> UsageLine:
    window = [r for r in rows if r.period >= since - since % 86_400]
    day = [r for r in rows if r.period >= today]
    this_month = [r for r in rows if r.period >= month]
    return UsageLine(
        scope=scope,
        name=name,
        requests=sum(r.requests for r in window),
        input_tokens=sum(r.input_tokens for r in window),
        output_tokens=sum(r.output_tokens for r in window),
        spend_usd=sum(r.spend_micro for r in window) / MICRO,
        today_input=sum(r.input_tokens for r in day),
        today_output=sum(r.output_tokens for r in day),
        month_spend_usd=sum(r.spend_micro for r in this_month) / MICRO,
        input_per_day=limits.input_tokens_per_day,
        output_per_day=limits.output_tokens_per_day,
        spend_per_month_usd=limits.spend_per_month_usd,
    )
