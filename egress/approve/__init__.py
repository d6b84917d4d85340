"""Just-in-time approvals of held requests: the store-backed service (`Approvals`), its asyncio
side for the gateway (`ApprovalDesk`) and webhook notices (`Notifier`).

The console and the CLI use `Approvals`; `Approval` is the stored record (egress.core.approvals).
"""

from egress.approve.service import ApprovalError, Approvals, ApprovalStore, Journal, request_digest
from egress.core.approvals import Approval, ApprovalNote, ApprovalStatus

__all__ = [
    "Approval",
    "ApprovalError",
    "ApprovalNote",
    "ApprovalStatus",
    "ApprovalStore",
    "Approvals",
    "Journal",
    "request_digest",
]
