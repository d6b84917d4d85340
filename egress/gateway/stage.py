"""The fail-closed boundary of a stage: the one place a stage's unexpected failure is turned into
a refusal.

Invariant: a stage either returns its result or raises EgressError. Its own refusals pass
through, and so does a cancellation (not an Exception); anything else it raises is a failure of
that stage, logged by type only (never its message, which may quote the payload), so the request
is refused with the client's native error and is never forwarded unexamined.

The boundary is also where a stage's time is marked for the metrics and the trace
(egress/telemetry/request.py): only while a request's marks are set, one lookup otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

from egress.core.errors import EgressError, ErrorCode
from egress.telemetry.request import CURRENT

log = logging.getLogger("egress.gateway")

T = TypeVar("T")


class StageBoundary:
    """`with StageBoundary("decide"):` around a stage's code, synchronous or awaited. It keeps no
    state per use, so one instance may guard the same stage of every request."""

    __slots__ = ("name", "message")

    def __init__(self, name: str, message: str | None = None) -> None:
        self.name = name
        # What the client reads; by default the request was refused before anything was sent.
        self.message = message or f"the {name} stage failed; the request was not sent"

    def __enter__(self) -> None:
        marks = CURRENT.get()
        if marks is not None:
            marks.open(self.name)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        marks = CURRENT.get()
        if marks is not None:
            marks.close()
        if exc is None or isinstance(exc, EgressError) or not isinstance(exc, Exception):
            return  # no failure, a refusal of its own, or a cancellation: it goes on as it is
        raise _failed(self.name, self.message, exc) from exc


def run_stage(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run one synchronous stage behind the fail-closed boundary (the same as `StageBoundary`,
    written out: it runs several times per request, and a try costs less than a `with`)."""
    marks = CURRENT.get()
    if marks is not None:
        marks.open(name)
    try:
        return fn(*args)
    except EgressError:
        raise
    except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of a stage
        raise _failed(name, f"the {name} stage failed; the request was not sent", exc) from exc
    finally:
        if marks is not None:
            marks.close()


def _failed(name: str, message: str, exc: Exception) -> EgressError:
    """The refusal of a stage that failed: logged by its type only (never its message)."""
    log.error("stage %s failed: %s", name, type(exc).__name__)
    return EgressError(ErrorCode.STAGE_FAILED, message, stage=name)
