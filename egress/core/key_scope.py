"""What a caller may do: a key's (or an OIDC token's) scope, and whether it is a person.

A scope has three dimensions, each a tuple of names; an empty tuple means "any":
- `apis`: wire APIs by their value (`anthropic.messages`) or by the part after the family
  (`messages`, `responses`);
- `models`: shell-style patterns matched against the requested model (`claude-*`);
- `endpoints`: configured endpoint names the caller's requests may be routed to.

Invariants: a refusal names the dimension and what the scope allows, never the key; a scope
only narrows (an unscoped caller is exactly as before); `as_json()` is the form stored in the
key store and given to the policy (lists, dimension order fixed), and `from_json` reads it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

DIMENSIONS = ("apis", "models", "endpoints")


class CallerKind(StrEnum):
    """Who is behind a credential: a person at a client, or an automated pipeline."""

    PERSON = "person"
    SERVICE_ACCOUNT = "service_account"


@dataclass(frozen=True, slots=True)
class KeyScope:
    apis: tuple[str, ...] = ()
    models: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()

    @property
    def unrestricted(self) -> bool:
        return not (self.apis or self.models or self.endpoints)

    def allows_api(self, api: str) -> bool:
        if not self.apis:
            return True
        short = api.partition(".")[2]
        return api in self.apis or short in self.apis

    def allows_model(self, model: str) -> bool:
        return not self.models or any(fnmatchcase(model, pattern) for pattern in self.models)

    def allows_endpoint(self, name: str) -> bool:
        return not self.endpoints or name in self.endpoints

    def as_json(self) -> dict[str, list[str]]:
        return {"apis": list(self.apis), "models": list(self.models), "endpoints": list(self.endpoints)}

    @classmethod
    def from_json(cls, raw: Any) -> KeyScope:
        """The stored or claimed form: an object of lists of strings (a missing key: any).
        Anything else raises ValueError (a scope that cannot be read must not widen)."""
        if raw is None:
            return UNSCOPED
        if not isinstance(raw, dict):
            raise ValueError("a scope is an object with apis, models and endpoints")
        stray = sorted(set(raw) - set(DIMENSIONS))
        if stray:
            raise ValueError(f"a scope has no dimension {stray[0][:40]!r}")
        values: dict[str, tuple[str, ...]] = {}
        for name in DIMENSIONS:
            items = raw.get(name) or []
            if isinstance(items, str):
                items = [part for part in items.replace(",", " ").split() if part]
            if not (isinstance(items, list) and all(isinstance(i, str) and i for i in items)):
                raise ValueError(f"scope {name} must be a list of non-empty strings")
            values[name] = tuple(items)
        return cls(**values)

    def describe(self) -> str:
        """For `keys list` and messages: `apis=messages models=claude-*`, or `any`."""
        parts = [f"{name}={','.join(getattr(self, name))}" for name in DIMENSIONS if getattr(self, name)]
        return " ".join(parts) or "any"


UNSCOPED = KeyScope()
