"""The `audit:` section of the configuration: how the audit writer commits records and signs
checkpoints, and what readiness allows (egress.config types its field as this).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class Durability(StrEnum):
    """When a request's egress record must be committed (the YAML values)."""

    BEFORE_FORWARD = "before_forward"  # an egress record, committed before the first byte goes upstream
    AFTER_RESPONSE = "after_response"  # one record after the answer, in a batch (a crash loses the last batch)


class AuditSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    flush_interval_ms: float = Field(default=20.0, gt=0, le=5000)
    max_batch: int = Field(default=512, ge=1, le=100_000)
    durability: Durability = Field(
        default=Durability.BEFORE_FORWARD,
        description="before_forward: a request's egress record is committed before its first byte goes upstream",
    )
    write_ahead_timeout_ms: float = Field(
        default=2000.0,
        gt=0,
        le=60_000,
        description="refuse (503 audit_unavailable) if the record is not committed by then",
    )
    max_backlog: int = Field(default=10_000, ge=1, description="not ready while more records than this await writing")
    signing_key_file: Path | None = Field(
        default=None, description="Ed25519 key that signs checkpoints; default data_dir/audit-signing.key"
    )
    checkpoint_every: int = Field(default=1000, ge=1, description="sign a checkpoint after this many records")
    checkpoint_interval_s: float = Field(default=10.0, gt=0, description="…or this long after an uncovered record")
    checkpoint_log: Path | None = Field(
        default=None,
        description="append-only file that anchors every checkpoint outside the database (put it on "
        "another disk or a WORM mount); default data_dir/audit-checkpoints.jsonl",
    )

    @property
    def flush_interval_s(self) -> float:
        """A batch is committed within this of its first record."""
        return self.flush_interval_ms / 1000.0

    @property
    def write_ahead_timeout_s(self) -> float | None:
        """How long a request waits for its egress record's commit; None: it does not wait."""
        return self.write_ahead_timeout_ms / 1000.0 if self.durability == Durability.BEFORE_FORWARD else None
