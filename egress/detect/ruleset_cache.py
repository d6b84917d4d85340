"""A resolved rule set written as JSON, so a short-lived `egress scan` need not parse and check
the rule files again (TOML parsing and an RE2 compile of every pattern: most of a cold start).

The text is plain data (no code is loaded from the cache). It is only valid for the sources it
came from: `source_digest` names the detection code and the bundled rule
files, and the caller adds its own inputs (configuration and rule files) to the key. A rule set
holding a rule with a code check (`Rule.check`: configured internal identifiers) is not written.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
from dataclasses import fields
from enum import Enum
from typing import Any

from egress.detect.rules import Allowlist, Rule, RuleSet

FORMAT = 1


def source_digest() -> str:
    """The detection code and the bundled rules: what a cached rule set was derived from besides
    the caller's own files."""
    digest = hashlib.sha256(f"ruleset-cache {FORMAT}\0".encode())
    package = importlib.resources.files("egress.detect")
    for entry in sorted((*package.iterdir(), *(package / "rules").iterdir()), key=lambda p: p.name):
        if entry.name.endswith((".py", ".toml")):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Allowlist):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(Allowlist)}
    return value


def _typed(cls: type, raw: dict[str, Any]) -> Any:
    """An Allowlist or Rule from its plain fields: lists back to tuples, enum values to enums."""
    out: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in raw:
            continue
        value = raw[f.name]
        if f.name == "allowlists":
            value = tuple(_typed(Allowlist, a) for a in value)
        elif isinstance(value, list):
            value = tuple(value)
        elif isinstance(f.default, Enum):
            value = type(f.default)(value)
        out[f.name] = value
    unknown = set(raw) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}")
    return cls(**out)


def dumps(ruleset: RuleSet) -> bytes | None:
    """The rule set as JSON; None if a rule carries a code check (it cannot be written)."""
    if any(rule.check is not None for rule in ruleset.rules):
        return None
    doc = {
        "format": FORMAT,
        "version": ruleset.version,
        "allowlists": [_plain(a) for a in ruleset.allowlists],
        "rules": [{f.name: _plain(getattr(r, f.name)) for f in fields(Rule) if f.name != "check"} for r in ruleset.rules],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def loads(blob: bytes) -> RuleSet:
    """Raises ValueError (or TypeError) for a blob that is not a rule set of this format."""
    doc = json.loads(blob)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not a cached rule set of this format")
    return RuleSet(
        rules=tuple(_typed(Rule, r) for r in doc["rules"]),
        allowlists=tuple(_typed(Allowlist, a) for a in doc["allowlists"]),
        version=doc["version"],
    )
