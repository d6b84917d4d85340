"""The mask stage: rewrite, inside text only, what the decision says must not leave.

Invariant: when there is nothing to mask, the body sent upstream is the client's body, byte for
byte (no re-serialisation), so prompt-cache prefixes and unknown fields are untouched.
"""

from __future__ import annotations

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Decision, Finding, MaskedRequest, ParsedRequest


class Masker:
    def apply(
        self, body: bytes, parsed: ParsedRequest, findings: tuple[Finding, ...], decision: Decision
    ) -> MaskedRequest:
        wanted = set(decision.mask_kinds)
        if not wanted or not any(f.kind in wanted for f in findings):
            return MaskedRequest(body=body, placeholders={}, masked_count=0)
        # Reversible, round-trip-stable placeholders are not built yet: refusing is the only
        # safe answer to a decision that requires masking (fail closed, never send it in clear).
        raise EgressError(
            ErrorCode.POLICY_DENIED,
            "the policy requires masking, and this gateway has no masker configured",
            stage="mask",
        )
