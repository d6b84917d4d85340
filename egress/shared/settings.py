"""The `redis:` section of the configuration (egress.config types its field as this).

Without `url` the gateway is one process with its state in memory (the embedded defaults); with
it, the replicas share their hot state there (egress/shared, docs/scaling.md)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class RedisSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # A secret: it may hold a password (redis://:pw@host/0); never logged.
    url: SecretStr | None = Field(default=None, description="redis://host:port/db; unset: state per process")
    key_prefix: str = Field(default="egress:", min_length=1, description="prefix of every key egress writes")
    connect_timeout_ms: float = Field(default=500.0, gt=0, le=30_000, description="bound on opening a connection")
    timeout_ms: float = Field(default=250.0, gt=0, le=30_000, description="bound on one round trip")
    ledger_ttl_hours: float = Field(default=24.0, gt=0, description="how long an idle session's ledger is kept")
    max_ledger_values: int = Field(default=512, ge=1, description="values remembered per session (most recent kept)")
    max_connections: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description="connections per process; a request beyond them waits for one within timeout_ms",
    )
    health_interval_ms: float = Field(default=1000.0, gt=0, description="how often the background probe pings")

    @property
    def connect_timeout_s(self) -> float:
        return self.connect_timeout_ms / 1000.0

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000.0

    @property
    def ledger_ttl_s(self) -> float:
        return self.ledger_ttl_hours * 3600.0

    @property
    def health_interval_s(self) -> float:
        return self.health_interval_ms / 1000.0
