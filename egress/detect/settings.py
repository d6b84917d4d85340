"""The `detection:` section of the configuration: which rules inspect prompts, and the bounds on
inspecting one request (egress.config types its field as this).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal),
except the scan's bounds, which it shares with TextScanner (egress.detect.bounds)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from egress.detect.bounds import DEFAULT_CACHE_MB, DEFAULT_MAX_FINDINGS
from egress.detect.internal import InternalIdentifiers


class DetectionSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    enabled: bool = True
    rules: tuple[Path, ...] = Field(default=(), description="gitleaks-format rule files")
    internal_identifiers: InternalIdentifiers = InternalIdentifiers()
    cache_mb: int = Field(
        default=DEFAULT_CACHE_MB, ge=0, le=4096, description="memory for findings of texts already seen"
    )
    cache_dir: Path | None = Field(default=None, description="compiled rule automata; default $XDG_CACHE_HOME/egress")
    max_findings_per_segment: int = Field(
        default=DEFAULT_MAX_FINDINGS,
        ge=1,
        le=1_000_000,
        description="past this many findings a text (or a request) is secret-dense: one finding covers each "
        "text with findings, masked or refused as a whole",
    )
    cpu_budget_s: float = Field(
        default=2.0,
        gt=0,
        le=600,
        description="CPU a request's inspection may use; past it the request is refused (413)",
    )
    inline_max_kb: int = Field(
        default=64,
        ge=0,
        le=1024 * 1024,
        description="bodies from this size are parsed, inspected and masked off the event loop",
    )
    process_min_kb: int = Field(
        default=1024,
        ge=0,
        le=1024 * 1024,
        description="bodies from this size are parsed, inspected and masked in worker processes (one per core), "
        "never in the gateway's process",
    )
