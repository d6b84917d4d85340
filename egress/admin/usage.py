"""The console's Usage page: requests, tokens and spend per team and user against their limits,
from the stored usage rows (egress/limits/report.py, the same figures as `egress usage`)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from egress.limits.report import UsageLine, month_start, parse_since, usage_report
from egress.limits.settings import LimitsSettings
from egress.store.base import Store


@dataclass(frozen=True, slots=True)
class UsagePage:
    lines: list[UsageLine]
    since: str
    team: str
    message: str


def usage_page(store: Store, limits: LimitsSettings, since: str, team: str) -> UsagePage:
    """The page's figures; a `since` that cannot be read is named, and this month is shown."""
    now = time.time()
    message = ""
    try:
        start = parse_since(since, now) if since else month_start(now)
    except ValueError as exc:
        message, start = str(exc), month_start(now)
    lines = usage_report(store, limits, start, now, team=team or None)
    return UsagePage(lines, since, team, message)
