"""How the gateway's dependencies and background loops are doing: the vocabulary of readiness.

A `Health` is kept by each thing that can break on its own (the audit writer, the key ring's
refresh, the policy probe, the sweeps). It remembers the last success and the last error class,
and logs an outage once when it begins and once when it ends, never a traceback per attempt.

Invariant: `Health` holds only monotonic times, counts and exception class names: never an
exception's message (it may carry a connection string) nor anything from a request.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass


def describe(exc: BaseException) -> str:
    """An error's class, and its SQLSTATE / SQLite error name when it has one: never its message."""
    code = getattr(exc, "sqlstate", None) or getattr(exc, "sqlite_errorname", None)
    return f"{type(exc).__name__}({code})" if code else type(exc).__name__


class Health:
    """One component's state. Updated from any thread (plain attribute writes); read by readiness."""

    def __init__(self, name: str, log: logging.Logger) -> None:
        self.name = name
        self._log = log
        self.last_ok: float | None = None  # time.monotonic() of the last success
        self.last_error: str | None = None  # the class of the last error (kept after recovery)
        self.failing_since: float | None = None  # set while failing
        self.failures = 0  # consecutive failures of the current outage

    @property
    def failing(self) -> bool:
        return self.failing_since is not None

    def ok(self) -> None:
        now = time.monotonic()
        if self.failing_since is not None:
            self._log.warning(
                "%s recovered after %.1f s (%d failed attempts)", self.name, now - self.failing_since, self.failures
            )
            self.failing_since = None
        self.failures = 0
        self.last_ok = now

    def failed(self, exc: BaseException) -> None:
        """Record a failure; the first of an outage (or a new kind of error) is logged, once."""
        what = describe(exc)
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            self._log.error("%s failing: %s; retrying with backoff (logged once per outage)", self.name, what)
        elif what != self.last_error:
            self._log.error("%s still failing, now: %s", self.name, what)
        self.failures += 1
        self.last_error = what

    def age(self) -> float | None:
        """Seconds since the last success (None: never succeeded)."""
        return None if self.last_ok is None else time.monotonic() - self.last_ok


class Backoff:
    """Bounded exponential backoff: first, first*2, … up to `cap` seconds; `reset` after a success."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self._next = first

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._next = self.first


@dataclass(frozen=True, slots=True)
class Check:
    """One readiness check: its name, whether it passes, and a one-line detail for operators."""

    name: str
    ok: bool
    detail: str
    last_error: str | None = None
    last_ok_age_s: float | None = None


@dataclass(frozen=True, slots=True)
class Readiness:
    """What `/readyz` answers: each check, the audit backlog and the not-yet-checkpointed tail."""

    checks: tuple[Check, ...]
    audit_backlog: int = 0
    audit_uncovered: int = 0

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks)

    def failing(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if not c.ok)
