"""The `masking:` section of the configuration: what the built-in policy masks, the key that
keys placeholders, and the session vault's bounds (egress.config types its field as this).

Its defaults are defined here only (the embedded egress.yaml masks pii too, on purpose; a test holds
the rest equal)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from egress.core.exchange import MASKABLE_KINDS


class MaskingSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kinds: tuple[str, ...] = Field(
        default=("secret",), description="finding kinds the built-in policy masks (a Rego policy decides its own)"
    )
    key_file: Path | None = Field(default=None, description="tenant master key; default data_dir/masking.key")
    vault_ttl_hours: float = Field(default=720.0, gt=0, description="how long a stateful session's map is kept")
    vault_timeout_ms: float = Field(
        default=2000.0, gt=0, le=60_000, description="bound on a vault read or write on the request path"
    )

    @field_validator("kinds")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in MASKABLE_KINDS]
        if unknown:
            raise ValueError(f"unknown finding kind {unknown[0]!r}; known: {', '.join(MASKABLE_KINDS)}")
        return value

    @property
    def vault_ttl_s(self) -> float:
        return self.vault_ttl_hours * 3600.0

    @property
    def vault_timeout_s(self) -> float:
        return self.vault_timeout_ms / 1000.0
