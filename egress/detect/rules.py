"""Detection rules in gitleaks format: the bundled set, and an organisation's own files.

The bundled rules (egress/detect/rules/*.toml) are written in the same format an organisation's
gitleaks configuration uses, so one loader reads both. Supported: `[[rules]]` (id, description,
regex, secretGroup, entropy, keywords, path, tags, allowlist / allowlists), the global
`[allowlist]` / `[[allowlists]]`, and `[extend]` (useDefault, path, disabledRules). In an
extending file a rule whose id already exists overrides the fields it sets and adds its
allowlists, as gitleaks does. Extension keys egress reads and gitleaks ignores: kind, family,
severity, confidence, validator, tier (certain | likely; default certain) and keyGroup (the
capture group holding the key name, which must name a credential: see detect/context.py).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import re2

from egress.core.exchange import Kind, Tier
from egress.detect.validators import VALIDATORS

SEVERITIES = ("low", "medium", "high", "critical")


class RuleError(ValueError):
    """A rule file that cannot be used, with the file and rule named."""


@dataclass(frozen=True, slots=True)
class Allowlist:
    description: str = ""
    condition: str = "OR"  # OR: any check allows; AND: all configured checks must allow
    regex_target: str = "secret"  # secret | match | line
    regexes: tuple[str, ...] = ()
    stopwords: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    target_rules: tuple[str, ...] = ()  # global allowlists only: limit to these rule ids


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    description: str = ""
    regex: str | None = None
    secret_group: int = 0
    entropy: float | None = None
    keywords: tuple[str, ...] = ()
    path: str | None = None
    tags: tuple[str, ...] = ()
    kind: Kind | str = Kind.SECRET  # a kind of an organisation's own rules stays a string
    family: str = "custom"
    severity: str = "high"
    confidence: float = 0.9
    validator: str | None = None
    tier: Tier = Tier.CERTAIN
    key_group: int = 0  # 0: none; else the group whose text must name a credential
    allowlists: tuple[Allowlist, ...] = ()
    origin: str = ""  # the file the rule came from
    # A post-check given in code (configured rules); file rules name one with `validator`.
    check: Callable[..., bool] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class RuleSet:
    rules: tuple[Rule, ...]
    allowlists: tuple[Allowlist, ...] = ()
    version: str = field(default="")

    def by_id(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def _tuple(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise RuleError(f"{where}: `{key}` must be a list of strings")
    return tuple(value)


def _allowlist(raw: Any, where: str) -> Allowlist:
    if not isinstance(raw, dict):
        raise RuleError(f"{where}: an allowlist must be a table")
    condition = str(raw.get("condition", "OR")).upper()
    target = str(raw.get("regexTarget", "secret")).lower()
    if condition not in ("OR", "AND"):
        raise RuleError(f"{where}: allowlist condition must be OR or AND")
    if target not in ("secret", "match", "line"):
        raise RuleError(f"{where}: allowlist regexTarget must be secret, match or line")
    allow = Allowlist(
        description=str(raw.get("description", "")),
        condition=condition,
        regex_target=target,
        regexes=_tuple(raw.get("regexes"), where, "regexes"),
        stopwords=tuple(s.lower() for s in _tuple(raw.get("stopwords"), where, "stopwords")),
        paths=_tuple(raw.get("paths"), where, "paths"),
        target_rules=_tuple(raw.get("targetRules"), where, "targetRules"),
    )
    for pattern in (*allow.regexes, *allow.paths):
        _compile(pattern, where)
    return allow


def _compile(pattern: str, where: str) -> Any:
    try:
        return re2.compile(pattern)
    except re2.error as exc:
        raise RuleError(f"{where}: regex does not compile under RE2: {exc}") from None


def _allowlists(raw: dict[str, Any], where: str, single: str, many: str) -> tuple[Allowlist, ...]:
    out: list[Allowlist] = []
    if single in raw:
        out.append(_allowlist(raw[single], f"{where} {single}"))
    for i, item in enumerate(raw.get(many) or []):
        out.append(_allowlist(item, f"{where} {many}[{i}]"))
    return tuple(out)


def _rule(raw: Any, origin: str, index: int) -> dict[str, Any]:
    """The fields a rule table sets (an extending file may set only some of them)."""
    where = f"{origin}: rules[{index}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        raise RuleError(f"{where}: every rule needs a string `id`")
    where = f"{origin}: rule {raw['id']!r}"
    fields: dict[str, Any] = {"id": raw["id"], "origin": origin}
    simple = {"description": str, "regex": str, "path": str, "kind": str, "family": str, "validator": str}
    for key, kind in simple.items():
        if key in raw:
            if not isinstance(raw[key], kind):
                raise RuleError(f"{where}: `{key}` must be a string")
            fields[key] = raw[key]
    if fields.get("kind") in tuple(Kind):
        fields["kind"] = Kind(fields["kind"])  # an organisation's own kinds stay strings
    if "tier" in raw:
        if raw["tier"] not in tuple(Tier):
            raise RuleError(f"{where}: `tier` must be one of {', '.join(Tier)}")
        fields["tier"] = Tier(raw["tier"])
    if "keyGroup" in raw:
        if not isinstance(raw["keyGroup"], int) or raw["keyGroup"] < 0:
            raise RuleError(f"{where}: `keyGroup` must be a non-negative integer")
        fields["key_group"] = raw["keyGroup"]
    if "secretGroup" in raw:
        if not isinstance(raw["secretGroup"], int) or raw["secretGroup"] < 0:
            raise RuleError(f"{where}: `secretGroup` must be a non-negative integer")
        fields["secret_group"] = raw["secretGroup"]
    if "entropy" in raw:
        if not isinstance(raw["entropy"], (int, float)):
            raise RuleError(f"{where}: `entropy` must be a number")
        fields["entropy"] = float(raw["entropy"])
    if "keywords" in raw:
        fields["keywords"] = tuple(k.lower() for k in _tuple(raw["keywords"], where, "keywords"))
    if "tags" in raw:
        fields["tags"] = _tuple(raw["tags"], where, "tags")
    if "severity" in raw:
        if raw["severity"] not in SEVERITIES:
            raise RuleError(f"{where}: `severity` must be one of {', '.join(SEVERITIES)}")
        fields["severity"] = raw["severity"]
    if "confidence" in raw:
        if not isinstance(raw["confidence"], (int, float)) or not 0 <= raw["confidence"] <= 1:
            raise RuleError(f"{where}: `confidence` must be a number from 0 to 1")
        fields["confidence"] = float(raw["confidence"])
    allowlists = _allowlists(raw, where, "allowlist", "allowlists")
    if allowlists:
        fields["allowlists"] = allowlists
    if "regex" in fields:
        compiled = _compile(fields["regex"], where)
        if fields.get("secret_group", 0) > compiled.groups:
            raise RuleError(f"{where}: secretGroup {fields['secret_group']} but the regex has {compiled.groups} groups")
        if fields.get("key_group", 0) > compiled.groups:
            raise RuleError(f"{where}: keyGroup {fields['key_group']} but the regex has {compiled.groups} groups")
    if "path" in fields:
        _compile(fields["path"], where)
    if "validator" in fields and fields["validator"] not in VALIDATORS:
        raise RuleError(f"{where}: unknown validator {fields['validator']!r} (known: {', '.join(sorted(VALIDATORS))})")
    return fields


def _parse_file(text: str, origin: str) -> tuple[list[dict[str, Any]], tuple[Allowlist, ...], dict[str, Any]]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{origin}: not valid TOML: {exc}") from None
    rules = [_rule(raw, origin, i) for i, raw in enumerate(doc.get("rules") or [])]
    allowlists = _allowlists(doc, origin, "allowlist", "allowlists")
    return rules, allowlists, doc.get("extend") or {}


def _merge(base: dict[str, Rule], fields: dict[str, Any]) -> Rule:
    existing = base.get(fields["id"])
    if existing is None:
        if "regex" not in fields and "path" not in fields:
            raise RuleError(f"{fields['origin']}: rule {fields['id']!r} needs a `regex` or a `path`")
        return Rule(**fields)
    allowlists = existing.allowlists + fields.pop("allowlists", ())
    return replace(existing, **fields, allowlists=allowlists)


def bundled_files() -> list[tuple[str, str]]:
    folder = importlib.resources.files("egress.detect") / "rules"
    return sorted((f"bundled:{p.name}", p.read_text()) for p in folder.iterdir() if p.name.endswith(".toml"))


def load_rules(files: Iterable[tuple[str, str]]) -> RuleSet:
    """Rules from (origin, text) pairs, later files extending earlier ones."""
    by_id: dict[str, Rule] = {}
    allowlists: list[Allowlist] = []
    digest = hashlib.sha256()
    disabled_near_miss = False
    for origin, text in files:
        digest.update(origin.encode() + b"\0" + text.encode() + b"\0")
        rules, file_allowlists, extend = _parse_file(text, origin)
        if extend.get("path"):
            base_path = Path(extend["path"])
            nested = load_rules([(str(base_path), base_path.read_text())])
            for rule in nested.rules:
                by_id.setdefault(rule.id, rule)
            allowlists.extend(nested.allowlists)
        for fields in rules:
            by_id[fields["id"]] = _merge(by_id, fields)
        allowlists.extend(file_allowlists)
        for disabled in extend.get("disabledRules") or []:
            by_id.pop(disabled, None)
            disabled_near_miss = disabled_near_miss or disabled == NEAR_MISS_RULE_ID
    by_id.pop(NEAR_MISS_RULE_ID, None)
    near_miss = None if disabled_near_miss else near_miss_rule(by_id.values())
    if near_miss is not None:
        by_id[near_miss.id] = near_miss
    return RuleSet(rules=tuple(by_id.values()), allowlists=tuple(allowlists), version=digest.hexdigest()[:16])


NEAR_MISS_RULE_ID = "vendor-prefix-near-miss"
# Keywords that end in a separator but are not distinctive enough to stand for a vendor.
_COMMON_PREFIXES = frozenset({"api-", "sdk-", "secret_", "oci-", "oci_", "hec-", "hec_", "ado-", "ado_", "key-"})
_PREFIX_SHAPE = re2.compile(r"^[a-z][a-z0-9_.-]*[a-z0-9][_-]$")


def near_miss_rule(rules: Iterable[Rule]) -> Rule | None:
    """One rule for every vendor prefix the bundled rules know (keywords ending in `_` or `-`:
    ghp_, glpat-, sk-ant-api03-, xoxb-, …) followed by a random-looking run of any length: a
    token whose length, checksum or structure is off is still reported, as `likely` (the exact
    rule, more confident, wins where both match)."""
    prefixes = sorted(
        {
            k
            for r in rules
            if r.kind == Kind.SECRET and r.family != "generic" and r.regex and r.origin.startswith("bundled:")
            for k in r.keywords
            if len(k) >= 4 and k not in _COMMON_PREFIXES and _PREFIX_SHAPE.match(k)
        },
        key=lambda k: (-len(k), k),
    )
    if not prefixes:
        return None
    alternatives = "|".join(re2.escape(p) for p in prefixes)
    return Rule(
        id=NEAR_MISS_RULE_ID,
        description="A vendor token prefix followed by a random part whose length, checksum or structure is off",
        regex=rf"(?:^|[^A-Za-z0-9_\-])((?:{alternatives})[A-Za-z0-9_\-]{{12,300}})",
        secret_group=1,
        keywords=tuple(prefixes),
        tags=("generic", "near-miss"),
        family="generic",
        severity="medium",
        confidence=0.8,  # above the key-in-context rules, below every exact vendor rule
        validator="vendor_near_miss",
        tier=Tier.LIKELY,
        origin="derived:vendor prefixes",
    )


def load_rule_files(user: list[tuple[str, str]], include_bundled: bool = True) -> RuleSet:
    """The bundled set plus (origin, text) rule files.

    A user file without `[extend] useDefault = true` replaces the bundled rules, as a gitleaks
    config without `[extend]` replaces gitleaks' defaults.
    """
    if user and include_bundled:
        extends = any(tomllib.loads(text).get("extend", {}).get("useDefault") for _, text in user)
        include_bundled = extends
    files = (bundled_files() if include_bundled else []) + user
    return load_rules(files)
