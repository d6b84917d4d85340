"""Where `egress scan` gets its rules: a plan cached from an earlier run when nothing it came
from has changed (the warm start, for pre-commit hooks), else the configuration (the cold start).

A plan is the resolved rule set (egress/detect/ruleset_cache.py) and the folder of the compiled
automata, stored under a key made of everything that decides them: the detection code and the
bundled rules, the configuration file's path and bytes (or the embedded defaults), and the rule
files given with --rules. Rule files the configuration names are read again on every warm start
and their digests compared with the plan's, so an edited rule file is never scanned with stale
rules. The warm start reads no configuration: it loads no pydantic, YAML or TOML.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from egress.detect import ruleset_cache
from egress.detect.compiled_cache import FileBlobCache, default_cache_dir
from egress.detect.rules import RuleSet

ENV_CONFIG = "EGRESS_CONFIG"  # the configuration path when --config is not given (egress.config)


@dataclass(frozen=True, slots=True)
class Plan:
    ruleset: RuleSet
    cache_dir: Path | None  # the compiled automata


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan_key(config_path: Path | None, rule_files: tuple[tuple[str, str], ...], env: Mapping[str, str]) -> str | None:
    """The key of the plan for these inputs; None when the configuration file cannot be read
    (the cold start reports it)."""
    if config_path is None and env.get(ENV_CONFIG):
        config_path = Path(env[ENV_CONFIG])
    digest = hashlib.sha256(ruleset_cache.source_digest().encode())
    if config_path is None:
        digest.update(b"embedded defaults\0")  # they name no rule files: one plan for every folder
    else:
        try:
            digest.update(str(config_path.resolve()).encode() + b"\0" + config_path.read_bytes())
        except OSError:
            return None
    for origin, text in rule_files:
        digest.update(b"\0rules\0" + origin.encode() + b"\0" + text.encode())
    return "scan-plan-" + digest.hexdigest()[:32]


class PlanCache:
    """Plans in the default cache folder (where the configuration cannot move them: reading the
    configuration is what a plan saves)."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._blobs = FileBlobCache(default_cache_dir(env))

    def load(self, key: str) -> Plan | None:
        blob = self._blobs.get(key)
        if blob is None:
            return None
        try:
            doc = json.loads(blob)
            for path, digest in doc["files"]:
                if _sha(Path(path).read_bytes()) != digest:
                    return None  # a configured rule file changed
            ruleset = ruleset_cache.loads(doc["ruleset"].encode())
        except (OSError, ValueError, TypeError, KeyError):
            return None
        return Plan(ruleset, Path(doc["cache_dir"]) if doc["cache_dir"] else None)

    def store(self, key: str, plan: Plan, configured_files: tuple[tuple[str, str], ...]) -> None:
        """`configured_files`: the rule files the configuration named, (path, text)."""
        ruleset = ruleset_cache.dumps(plan.ruleset)
        if ruleset is None:
            return  # a rule with a code check: every start is a cold one
        doc = {
            "cache_dir": str(plan.cache_dir) if plan.cache_dir else None,
            "files": [(path, _sha(text.encode())) for path, text in configured_files],
            "ruleset": ruleset.decode(),
        }
        self._blobs.put(key, json.dumps(doc).encode())
