"""The telemetry sections of the configuration: `metrics:` (Prometheus), `tracing:`
(OpenTelemetry over OTLP/HTTP), `logging:` (text or JSON lines, the optional access log) and
`organisation:` (facts about the organisation the metrics and reports read: its home
jurisdictions). egress.config types its sections as these; their defaults live here only.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from egress.core.jurisdictions import ISO_3166_ALPHA2, SPECIAL_JURISDICTIONS


class MetricsSettings(BaseModel):
    """`GET /metrics`, off by default. Once on, it is never open to anyone: it answers a bearer
    token read from the variable `token_env` names, or it is served only on `listen` (a private
    address), or both."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = False
    token_env: str | None = Field(
        default=None, description="the environment variable holding the bearer token a scraper must send"
    )
    listen: str | None = Field(
        default=None, description="host:port of a separate listener for /metrics (then not on the gateway's port)"
    )
    # Teams are bounded (an organisation's own list); users are not, and are never a label.
    team_labels: bool = Field(default=False, description="add a team label to the request families")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError("listen is host:port, e.g. 127.0.0.1:9464")
        return value

    @model_validator(mode="after")
    def _protected(self) -> MetricsSettings:
        if self.enabled and self.token_env is None and self.listen is None:
            raise ValueError("metrics.enabled needs token_env (a bearer token) or listen (a separate address)")
        return self

    @property
    def listen_address(self) -> tuple[str, int] | None:
        if self.listen is None:
            return None
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)


class TracingSettings(BaseModel):
    """OpenTelemetry traces, off by default: one span per request, one child per stage, exported
    over OTLP/HTTP (protobuf). Never a prompt, a value or a header."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = False
    endpoint: str = Field(default="http://127.0.0.1:4318/v1/traces", description="the OTLP/HTTP traces URL")
    service_name: str = "egress"
    export_timeout_s: float = Field(default=10.0, gt=0)
    # Spans wait in a bounded queue and leave in batches from a background thread: a slow
    # collector never slows a request; when the queue is full, spans are dropped. A request
    # makes about 7 spans; large batches make fewer posts (each costs about as much CPU as
    # encoding a hundred spans: docs/performance.md).
    max_queue_size: int = Field(default=16384, ge=1)
    max_export_batch_size: int = Field(default=2048, ge=1)
    schedule_delay_s: float = Field(default=1.0, gt=0, description="how often queued spans are sent")


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class LoggingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    format: LogFormat = LogFormat.TEXT
    # One line per request (request id, user, team, api, endpoint, decision, outcome, status,
    # latency): never content, a header or the query string.
    access_log: bool = False


class OrganisationSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # Where the organisation's data may stay: a call to an endpoint elsewhere is a cross-border
    # call (egress_cross_border_calls_total). Empty: not configured, nothing counts as one.
    home_jurisdictions: tuple[str, ...] = Field(
        default=(), description="ISO 3166 alpha-2 codes or EU: calls elsewhere are cross-border"
    )

    @field_validator("home_jurisdictions")
    @classmethod
    def _codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if code not in ISO_3166_ALPHA2 and code not in SPECIAL_JURISDICTIONS:
                raise ValueError(f"{code!r} is not an ISO 3166 alpha-2 code, EU or self")
        return value
