"""The `store:` section of the configuration: where egress keeps its state (egress.config types
its field as this; egress.store.open opens it).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SqliteSync(StrEnum):
    """SQLite's `synchronous` pragma in WAL mode (the YAML values): what a commit survives."""

    FULL = "full"  # the WAL is fsynced at every commit: it survives a process kill and a power loss
    NORMAL = "normal"  # fsync at checkpoints only: it survives a process kill; a power loss may lose the last commits


class StoreSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    url: str | None = Field(default=None, description="sqlite:///PATH or postgresql://…; default: SQLite in data_dir")
    busy_timeout_ms: float = Field(
        default=5000.0, gt=0, le=600_000, description="SQLite: how long a statement waits for another process's lock"
    )
    connect_timeout_s: float = Field(default=5.0, gt=0, le=600, description="PostgreSQL: connect attempt bound")
    sqlite_synchronous: SqliteSync = Field(
        default=SqliteSync.FULL,
        description="SQLite: full fsyncs every commit (a committed audit record survives a power loss); "
        "normal survives a process kill only, and makes the write-ahead commit much cheaper on a slow disk",
    )

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @property
    def busy_timeout_s(self) -> float:
        return self.busy_timeout_ms / 1000.0
