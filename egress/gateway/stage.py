"""The fail-closed boundary of a stage.

Invariant: a stage either returns its result or raises EgressError. Its own refusals pass
through; anything else it raises is a failure of that stage, so the request is refused with the
client's native error and is never forwarded unexamined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from egress.core.errors import EgressError, ErrorCode

log = logging.getLogger("egress.gateway")

T = TypeVar("T")


def run_stage(name: str, fn: Callable[..., T], *args: Any) -> T:
    """Run one stage behind the fail-closed boundary."""
    try:
        return fn(*args)
    except EgressError:
        raise
    except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of a stage
        log.error("stage %s failed: %s", name, type(exc).__name__)
        raise EgressError(
            ErrorCode.STAGE_FAILED, f"the {name} stage failed; the request was not sent", stage=name
        ) from exc
