"""egress's own refusals and failures, independent of any wire format.

An `EgressError` carries a stable machine-readable `code`; the wire layer renders it in the
client's native error shape. Refusals use a 4xx that clients do not retry; only failures of the
upstream path (which a retry may fix) use 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    UNAUTHORIZED = "unauthorized"
    INVALID_REQUEST = "invalid_request"
    INVALID_JSON = "invalid_json"
    INVALID_UTF8 = "invalid_utf8"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    NO_ROUTE = "no_route"
    POLICY_DENIED = "policy_denied"
    # The caller's key (or token) is scoped, and this request is outside its scope.
    OUT_OF_SCOPE = "out_of_scope"
    APPROVAL_REQUIRED = "approval_required"  # held for an approver: retry the identical request once approved
    APPROVAL_DENIED = "approval_denied"
    APPROVAL_EXPIRED = "approval_expired"  # no approver decided in time
    POLICY_UNAVAILABLE = "policy_unavailable"  # the engine failed or did not answer in time: deny
    POLICY_INVALID = "policy_invalid"  # the engine answered something that is not a decision: deny
    NO_COMPLIANT_ENDPOINT = "no_compliant_endpoint"  # every endpoint the policy allowed is down
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_TIMEOUT = "upstream_timeout"
    UPSTREAM_PROTOCOL_ERROR = "upstream_protocol_error"
    # The upstream's stream ended (a clean EOF) before the API's terminal event: the answer is cut.
    UPSTREAM_TRUNCATED = "upstream_truncated"
    STAGE_FAILED = "stage_failed"
    SHUTTING_DOWN = "shutting_down"
    # /readyz is not ready (the audit cannot be written, the policy engine or key store is out):
    # nothing is sent upstream until it is.
    GATEWAY_NOT_READY = "gateway_not_ready"
    # The request's egress record could not be made durable in time: nothing was sent.
    AUDIT_UNAVAILABLE = "audit_unavailable"
    # The key store cannot be read and the key ring is too stale to vouch for a key.
    AUTH_UNAVAILABLE = "auth_unavailable"
    # Inspecting the request's text needed more CPU than inspection.cpu_budget_s: nothing was sent.
    INSPECTION_BUDGET_EXCEEDED = "inspection_budget_exceeded"
    # A rate limit or budget of the caller's key, user or team is reached (egress/limits): the
    # API's native 429 with retry-after; OpenAI's own code for it.
    RATE_LIMITED = "rate_limit_exceeded"


# (HTTP status, retryable). Refusals are final: a retry of the same request gets the same answer.
_STATUS: dict[ErrorCode, tuple[int, bool]] = {
    ErrorCode.UNAUTHORIZED: (401, False),
    ErrorCode.INVALID_REQUEST: (400, False),
    ErrorCode.INVALID_JSON: (400, False),
    ErrorCode.INVALID_UTF8: (400, False),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, False),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, False),
    ErrorCode.REQUEST_TIMEOUT: (408, False),
    ErrorCode.NOT_FOUND: (404, False),
    ErrorCode.METHOD_NOT_ALLOWED: (405, False),
    ErrorCode.NO_ROUTE: (400, False),
    ErrorCode.POLICY_DENIED: (403, False),
    ErrorCode.OUT_OF_SCOPE: (403, False),
    # Not retried automatically: a person decides; the client retries the identical request after.
    ErrorCode.APPROVAL_REQUIRED: (403, False),
    ErrorCode.APPROVAL_DENIED: (403, False),
    ErrorCode.APPROVAL_EXPIRED: (403, False),
    ErrorCode.POLICY_UNAVAILABLE: (503, True),
    ErrorCode.POLICY_INVALID: (500, False),
    # Never answered by a non-compliant endpoint instead; a retry may find a compliant one back.
    ErrorCode.NO_COMPLIANT_ENDPOINT: (503, True),
    ErrorCode.UPSTREAM_UNAVAILABLE: (502, True),
    ErrorCode.UPSTREAM_TIMEOUT: (504, True),
    ErrorCode.UPSTREAM_PROTOCOL_ERROR: (502, True),
    ErrorCode.UPSTREAM_TRUNCATED: (502, True),
    # A stage failing is a bug or a broken dependency: fail closed, and do not invite a retry storm.
    ErrorCode.STAGE_FAILED: (500, False),
    ErrorCode.SHUTTING_DOWN: (503, True),
    ErrorCode.GATEWAY_NOT_READY: (503, True),
    ErrorCode.AUDIT_UNAVAILABLE: (503, True),
    ErrorCode.AUTH_UNAVAILABLE: (503, True),
    ErrorCode.INSPECTION_BUDGET_EXCEEDED: (413, False),
    # Retryable after `retry_after_s` (the retry-after header): the agents back off and retry.
    ErrorCode.RATE_LIMITED: (429, True),
}


class EgressError(Exception):
    """A refusal or failure that egress itself reports to the client."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        stage: str | None = None,
        details: Mapping[str, Any] | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.stage = stage
        # Machine-readable facts beside the code (e.g. which endpoint failed and the cause class),
        # where the client's error shape has room for them (Anthropic's `details`). JSON values;
        # never a secret, a credential, a host or a URL.
        self.details: dict[str, Any] = dict(details or {})
        # Whole seconds the client should wait before retrying (the `retry-after` header).
        self.retry_after_s = retry_after_s

    @property
    def status(self) -> int:
        return _STATUS[self.code][0]

    @property
    def retryable(self) -> bool:
        return _STATUS[self.code][1]

    def __repr__(self) -> str:
        return f"EgressError({self.code.value!r}, {self.message!r})"
