"""The `approvals:` section of the configuration: just-in-time approvals of requests the policy
answers with `require_approval` (egress.config types its field as this).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ApprovalMode(StrEnum):
    """What the gateway does with a request that needs an approval (the YAML values)."""

    HOLD = "hold"  # keep it open until an approver decides or the timeout passes
    REFUSE = "refuse"  # answer 403 at once; an identical retry passes once approved


class WebhookFormat(StrEnum):
    """The body of the pending-approval notice (the YAML values)."""

    GENERIC = "generic"  # a JSON document
    SLACK = "slack"  # a Slack incoming-webhook body with a button


class ApprovalSettings(BaseModel):
    """Just-in-time approvals of requests the policy answers with `require_approval` (docs/policy.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    mode: ApprovalMode = Field(
        default=ApprovalMode.HOLD,
        description="hold: keep the request open (streams get keep-alive pings) until decided; "
        "refuse: answer 403 at once naming the approval URL, and let an identical retry pass once approved",
    )
    timeout_s: float = Field(
        default=300.0, gt=0, le=86_400, description="hold: a request nobody decides within this is denied"
    )
    retry_ttl_s: float = Field(
        default=3600.0,
        gt=0,
        le=30 * 86_400,
        description="how long an approval stays usable by an identical retry (refuse mode: also how long "
        "approvers have to decide)",
    )
    ping_interval_s: float = Field(default=10.0, gt=0, le=300, description="keep-alive interval of a held stream")
    poll_interval_s: float = Field(
        default=1.0, gt=0, le=60, description="how often a held request re-reads the shared store for a decision"
    )
    webhook_url: str | None = Field(default=None, description="POST a notice of each new pending approval here")
    webhook_format: WebhookFormat = Field(
        default=WebhookFormat.GENERIC,
        description="generic: a JSON document; slack: an incoming-webhook body with a button",
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60, description="the webhook's deadline (never blocks)")

    @field_validator("webhook_url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value
