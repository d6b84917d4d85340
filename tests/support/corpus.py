"""The labelled detection corpus: loading it and scoring the engine on it, per rule family.

Shared by the corpus test (which fails the build when recall drops or a negative is flagged) and
by bench/detection_report.py (which writes docs/detection.md).
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from egress.app import FileBlobCache
from egress.config import default_cache_dir
from egress.detect.engine import RuleMatcher
from egress.detect.rules import bundled_files, load_rules
from egress.detect.scan import merge

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@dataclass
class Score:
    positives: int = 0
    found: int = 0
    negatives: int = 0
    false_positives: int = 0
    misses: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.positives if self.positives else 1.0

    @property
    def precision(self) -> float:
        flagged = self.found + self.false_positives
        return self.found / flagged if flagged else 1.0


def load_corpus() -> tuple[list[dict], list[dict]]:
    entries: list[dict] = []
    for path in sorted((CORPUS / "secrets").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()) or []:
            entries.append({**entry, "file": path.name})
    negatives = yaml.safe_load((CORPUS / "negatives.yaml").read_text()) or []
    return entries, negatives


def score(matcher: RuleMatcher) -> dict[str, Score]:
    """Per family: a positive counts as found when its rule reports exactly its secret; a rule
    negative is a false positive when its rule fires; a shared negative when any rule fires."""
    families = {r.id: r.family for r in matcher.ruleset.rules}
    scores: dict[str, Score] = defaultdict(Score)
    entries, negatives = load_corpus()
    for entry in entries:
        rule_id = entry["rule"]
        family = families.get(rule_id, "unknown-rule")
        s = scores[family]
        for example in entry.get("positives") or []:
            s.positives += 1
            found = {(m.rule.id, m.secret) for m in merge(matcher.scan(example["text"]))}
            if (rule_id, example["secret"]) in found:
                s.found += 1
            else:
                s.misses.append(f"{rule_id} [{example.get('context')}]: {example['text'][:80]!r}")
        for example in entry.get("negatives") or []:
            s.negatives += 1
            # A vendor-shaped value that fails its checksum is the rule's near miss: reported as
            # `likely` by design, not a false positive of the rule's `certain` tier.
            if any(m.rule.id == rule_id and m.tier == m.rule.tier for m in matcher.scan(example["text"])):
                s.false_positives += 1
                s.flagged.append(f"{rule_id}: {example['text'][:80]!r} ({example.get('note')})")
    for example in negatives:
        for m in merge(matcher.scan(example["text"])):
            if m.rule.kind != "secret":
                continue
            s = scores[m.rule.family]
            s.negatives += 1
            s.false_positives += 1
            s.flagged.append(f"{m.rule.id} on shared negative {example['text'][:60]!r} ({example.get('note')})")
    return dict(scores)


def bundled_matcher(**kwargs: object) -> RuleMatcher:
    """The bundled rules, with the compiled prefilter cached where egress itself caches it."""
    return RuleMatcher(load_rules(bundled_files()), FileBlobCache(default_cache_dir(os.environ)), **kwargs)  # type: ignore[arg-type]
