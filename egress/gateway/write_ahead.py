"""The write-ahead egress record (audit.durability: before_forward).

Invariant: with a timeout set, no attempt's first byte leaves before its egress record (where
it goes, what it carries) is durable in the audit; a record that cannot be committed within
the timeout refuses the request (`audit_unavailable`), and nothing is sent. With no timeout
(after_response) there is no write-ahead record: the request's one record follows it.
"""

from __future__ import annotations

import asyncio

from egress.audit.record import build_egress
from egress.audit.writer import AuditUnavailable, AuditWriter
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange


class WriteAhead:
    def __init__(self, audit: AuditWriter, timeout_s: float | None) -> None:
        self.audit = audit
        self.timeout_s = timeout_s  # None: after_response, no write-ahead record

    async def commit(self, x: Exchange, body: bytes) -> None:
        """Return only once this attempt's egress record is durable; else refuse: nothing is sent."""
        timeout = self.timeout_s
        if timeout is None:
            return
        committed = self.audit.submit_ahead(build_egress(x, body))
        # One timer on the future itself rather than asyncio.wait_for (an extra future, callbacks
        # and task step per request). On expiry the future fails with `_Expired`; either way the
        # writer sees it done and drops the record, as it did wait_for's cancellation. Cancelling
        # this task cancels the future too (the awaited future is cancelled with its task).
        expiry = asyncio.get_running_loop().call_later(timeout, _expire, committed)
        try:
            await committed
        except _Expired:
            raise EgressError(
                ErrorCode.AUDIT_UNAVAILABLE,
                f"the audit record of this request could not be written within {timeout:g} s; it was not sent",
                stage="route",
            ) from None
        except AuditUnavailable:
            raise EgressError(
                ErrorCode.AUDIT_UNAVAILABLE,
                "the audit record of this request could not be written; it was not sent",
                stage="route",
            ) from None
        finally:
            expiry.cancel()


class _Expired(Exception):
    """The write-ahead timeout passed before the record's commit."""


def _expire(committed: asyncio.Future[None]) -> None:
    if not committed.done():
        committed.set_exception(_Expired())
