"""Usage for reporting: the answers' tokens and spend added up in memory per minute and per
day, and written to the store in one batch every `limits.flush_interval_s` (and at shutdown),
never on the request path. A failed write keeps the sums for the next flush (logged once per
outage); a process killed with SIGKILL loses at most one interval of reporting (the limits
themselves are in Redis or in memory, not here)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from egress.core.exchange import Principal
from egress.core.health import Health
from egress.store.base import Store
from egress.store.usage import UsageRow

log = logging.getLogger("egress.limits")
_Ident = tuple[int, str, str, str, str]  # period, user, team, key id, model


@dataclass(slots=True)
class _Sum:
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    spend_micro: int = 0

    def add(self, other: _Sum) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.spend_micro += other.spend_micro


def _rows(sums: dict[_Ident, _Sum]) -> list[UsageRow]:
    return [UsageRow(*ident, s.requests, s.input_tokens, s.output_tokens, s.spend_micro) for ident, s in sums.items()]


class UsageLog:
    def __init__(self, store: Store, interval_s: float) -> None:
        self._store = store
        self._interval_s = interval_s
        self._minutes: dict[_Ident, _Sum] = {}
        self._days: dict[_Ident, _Sum] = {}
        self._task: asyncio.Task[None] | None = None
        self.health = Health("usage log", log)

    def note(self, who: Principal, model: str, at: float, tokens_in: int, tokens_out: int, spend_micro: int) -> None:
        """One answered request (a dictionary update; nothing else on the request path)."""
        rest = (who.user, who.team or "", who.key_id or "", model[:200])
        for sums, size in ((self._minutes, 60), (self._days, 86_400)):
            ident = (int(at // size) * size, *rest)
            held = sums.get(ident)
            if held is None:
                held = sums[ident] = _Sum()
            held.add(_Sum(1, tokens_in, tokens_out, spend_micro))

    async def flush(self) -> None:
        if not self._minutes and not self._days:
            return
        minutes, days = self._minutes, self._days
        self._minutes, self._days = {}, {}
        try:
            await asyncio.to_thread(self._store.usage_add, _rows(minutes), _rows(days))
        except Exception as exc:  # noqa: BLE001 - kept for the next flush, logged once per outage
            self.health.failed(exc)
            for kept, now in ((minutes, self._minutes), (days, self._days)):
                for ident, s in now.items():
                    kept.setdefault(ident, _Sum()).add(s)
            self._minutes, self._days = minutes, days
            return
        self.health.ok()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="egress-usage-log")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            await self.flush()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
