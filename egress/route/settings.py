"""The settings of routing: the `upstream:` section of the configuration (egress.config types
its field as this) and the endpoint circuit breaker's, which is not configurable.

Their defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UpstreamSettings(BaseModel):
    """The HTTP client to provider endpoints; an endpoint's own timeouts take precedence."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=600.0, gt=0)
    pool_size: int = Field(default=256, ge=1)
    keepalive_s: float = Field(default=60.0, ge=0)
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None


class BreakerSettings(BaseModel):
    """Per-endpoint circuit breaker (egress.route.health)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    failure_threshold: int = Field(default=3, ge=1, description="consecutive failures that open the circuit")
    cooldown_s: float = Field(
        default=5.0, gt=0, description="how long a newly opened circuit skips the endpoint before a probe"
    )
    max_cooldown_s: float = Field(
        default=60.0, gt=0, description="the cool-down doubles after each failed probe, up to this"
    )
