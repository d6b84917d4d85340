"""The `policy:` section of the configuration: which policy decides, with what data, and how its
decisions are bounded and cached (egress.config types its field as this; PolicyService reads it).

Its defaults are defined here only (the embedded egress.yaml may restate them; a test holds both equal)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

# A remote OPA's decisions are cached this long unless `cache_ttl_s` says otherwise (its policy can
# change without egress knowing); an in-process policy's are kept until its revision changes.
OPA_CACHE_TTL_S = 5.0
# The rule whose value is the decision (policy.query), unless the configuration names another.
DEFAULT_QUERY = "data.egress.decision"


class PolicyEngineKind(StrEnum):
    """Which policy engine decides (the YAML values)."""

    REGO = "rego"  # in-process (regopy)
    OPA = "opa"  # a remote OPA server
    BUILTIN = "builtin"  # allow the serving endpoints and mask


class PolicySettings(BaseModel):
    """Which policy decides, and its data (docs/policy.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    engine: PolicyEngineKind = Field(
        default=PolicyEngineKind.REGO,
        description="rego: in-process (regopy); opa: a remote OPA server; builtin: allow and mask",
    )
    files: tuple[Path, ...] = Field(default=(), description=".rego files or folders; default: the bundled policy")
    query: str = Field(default=DEFAULT_QUERY, pattern=r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$")
    data: dict[str, Any] = Field(default_factory=dict, description="the policy's settings, as data.egress_config")
    data_schema: Path | None = Field(
        default=None,
        description="the schema policy.data is checked against (docs/policy.md); default: the bundled policy's, "
        "or a data_schema.yaml beside custom policy files",
    )
    opa_url: str | None = Field(default=None, description="the OPA server for engine opa, e.g. http://127.0.0.1:8181")
    timeout_ms: float = Field(default=250.0, gt=0, le=60_000)
    cache_entries: int = Field(default=10_000, ge=0)
    cache_ttl_s: float | None = Field(default=None, gt=0, description="default: forever for rego, 5 s for opa")
    shadow: bool = Field(default=False, description="record decisions without enforcing them (rollout)")
    client_classifications: tuple[str, ...] = Field(
        default=("proprietary",),
        description="labels a client may declare in x-egress-classification (only ones that tighten the policy)",
    )

    @model_validator(mode="after")
    def _opa_needs_url(self) -> PolicySettings:
        if self.engine == PolicyEngineKind.OPA and not self.opa_url:
            raise ValueError("engine opa needs opa_url")
        return self

    @property
    def timeout_s(self) -> float:
        return self.timeout_ms / 1000.0

    @property
    def decision_ttl_s(self) -> float | None:
        """How long a cached decision is served; None: until the policy's revision changes."""
        if self.cache_ttl_s is not None:
            return self.cache_ttl_s
        return OPA_CACHE_TTL_S if self.engine == PolicyEngineKind.OPA else None
