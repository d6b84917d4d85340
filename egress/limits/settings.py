"""The `limits:` section of the configuration (egress.config types its field as this).

    limits:
      default: {requests_per_minute: 600}          # every user without an entry of their own
      users: {alice: {output_tokens_per_day: 2000000}}
      teams: {qa: {requests_per_minute: 5, output_tokens_per_day: 200000}}
      keys:  {key_3f2a9c01d4e5: {spend_per_month_usd: 50}}
      prices: {my-model: {input_per_mtok: 1.0, output_per_mtok: 4.0, source: "...", as_of: "2026-12-07"}}

A user's entry overrides `default` field by field; teams and keys are limited only where listed.
Every limit is optional: an unset one is no limit. Defaults are defined here only."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class LimitSet(BaseModel):
    """The limits of one key, user or team. Counts are per fixed window (docs/limits.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    requests_per_minute: int | None = Field(default=None, ge=1)
    input_tokens_per_minute: int | None = Field(default=None, ge=1)
    output_tokens_per_minute: int | None = Field(default=None, ge=1)
    input_tokens_per_day: int | None = Field(default=None, ge=1)
    output_tokens_per_day: int | None = Field(default=None, ge=1)
    spend_per_month_usd: float | None = Field(default=None, gt=0)

    def over(self, base: LimitSet) -> LimitSet:
        """This set's limits, with `base`'s where this one sets none."""
        return LimitSet.model_validate({**base.model_dump(exclude_none=True), **self.model_dump(exclude_none=True)})

    @property
    def empty(self) -> bool:
        return not self.model_dump(exclude_none=True)


class ModelPrice(BaseModel):
    """What one model costs, in US dollars per million tokens, and where that was read."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    # Prompt-cache reads, where the provider prices them apart (unset: the input price).
    cache_read_per_mtok: float | None = Field(default=None, ge=0)
    source: str | None = None
    as_of: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


class LimitsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    default: LimitSet = LimitSet()
    users: dict[str, LimitSet] = Field(default_factory=dict)
    teams: dict[str, LimitSet] = Field(default_factory=dict)
    keys: dict[str, LimitSet] = Field(default_factory=dict, description="by gateway key id (key_…)")
    # Prices by model id, over the catalog's (egress/defaults/catalog.yaml `prices:`).
    prices: dict[str, ModelPrice] = Field(default_factory=dict)
    # Redis down: each process enforces this share of every limit on its own (1.0: the whole
    # limit per process; with R replicas, 1/R keeps the sum near the limit).
    fallback_share: float = Field(default=1.0, gt=0, le=1)
    # Per-minute and per-day usage rows are written to the store in batches this often.
    flush_interval_s: float = Field(default=10.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _named(self) -> LimitsSettings:
        for section in (self.users, self.teams, self.keys):
            if any(not name for name in section):
                raise ValueError("a limits entry needs a non-empty name")
        return self

    @property
    def configured(self) -> bool:
        """Any limit at all: without one, the request path does nothing for limits."""
        return not (self.default.empty and not self.users and not self.teams and not self.keys)
