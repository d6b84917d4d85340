"""The `recording:` section of the configuration (egress.config types its field as this).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class RecordingSettings(BaseModel):
    """Session recording (docs/recording.md): payloads of requests whose policy decision carries
    the `record_payload` obligation, sealed at rest. Nothing is recorded unless the policy asks."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    key_file: Path | None = Field(
        default=None, description="AES-256 keys sealing recorded payloads; default data_dir/recording.key (0600)"
    )
    retention_days: float = Field(
        default=30.0, gt=0, description="recorded payloads are deleted this long after the request"
    )
    max_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="each payload (sent, received) is kept up to this size"
    )
    purge_interval_s: float = Field(default=3600.0, gt=0, description="how often expired payloads are deleted")

    @property
    def retention_s(self) -> float:
        return self.retention_days * 86400.0
