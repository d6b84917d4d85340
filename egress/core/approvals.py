"""An approval of one held request, as stored and as shown to approvers.

Invariant: an approval never holds prompt content: finding kinds and rule ids with their counts,
the policy's reasons, the allowed endpoints, the model and the digest of the masked request.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ApprovalStatus(StrEnum):
    PENDING = "pending"  # waiting for an approver
    APPROVED = "approved"  # approved, not used yet (a retry may use it until expires_at)
    DENIED = "denied"
    EXPIRED = "expired"  # nobody decided in time, or an approval nobody used in time
    USED = "used"  # a request went out on it (once)
    CANCELLED = "cancelled"  # the held client went away


@dataclass(frozen=True, slots=True)
class Approval:
    approval_id: str
    status: ApprovalStatus
    user: str
    team: str | None
    request_id: str  # the request that asked first
    api: str
    model: str | None
    endpoints: tuple[str, ...]
    reasons: tuple[str, ...]
    kinds: dict[str, int]
    rules: dict[str, int]
    digest: str  # SHA-256 over (user, api, masked body): what an identical retry must match
    created_at: float
    # Pending: the deadline for a decision. Approved: the deadline for using it.
    expires_at: float
    decided_by: str | None
    decided_at: float | None
    note: str | None

    def facts(self) -> dict[str, Any]:
        """What a notice or an audit step tells about the held request (JSON-ready; no content)."""
        return {
            "approval_id": self.approval_id,
            "user": self.user,
            "team": self.team,
            "api": self.api,
            "model": self.model,
            "endpoints": list(self.endpoints),
            "reasons": list(self.reasons),
            "kinds": self.kinds,
            "rules": self.rules,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class ApprovalNote:
    """What a request's audit record says about its approval."""

    approval_id: str
    status: ApprovalStatus
    approver: str | None
