"""The fail-closed boundary of a stage: the one place a stage's unexpected failure is turned into
a refusal.

Invariant: a stage either returns its result or raises EgressError. Its own refusals pass
through, and so does a cancellation (not an Exception); anything else it raises is a failure of
that stage, logged by type only (never its message, which may quote the payload), so the request
is refused with the client's native error and is never forwarded unexamined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from egress.core.errors import EgressError, ErrorCode

log = logging.getLogger("egress.gateway")

T = TypeVar("T")


class StageBoundary:
    """`with StageBoundary("decide"):` around a stage's code, synchronous or awaited."""

    __slots__ = ("name", "message")

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        # What the client reads; by default the request was refused before anything was sent.
        self.message = message or f"the {name} stage failed; the request was not sent"

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None or isinstance(exc, EgressError) or not isinstance(exc, Exception):
            return  # no failure, a refusal of its own, or a cancellation: it goes on as it is
        log.error("stage %s failed: %s", self.name, type(exc).__name__)
        raise EgressError(ErrorCode.STAGE_FAILED, self.message, stage=self.name) from exc


def run_stage(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run one synchronous stage behind the fail-closed boundary."""
    with StageBoundary(name):
        return fn(*args)
