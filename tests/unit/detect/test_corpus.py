"""The labelled corpus: every rule finds its positives in every context and none of its negatives.

The thresholds below are the floor the build holds: recall may not drop below them, and a shared
hard negative (hashes, UUIDs, lock files, code that handles secrets by reference) may never be
flagged. docs/detection.md reports the same scores (bench/detection_report.py)."""

from __future__ import annotations

import pytest

from tests.support.corpus import bundled_matcher, load_corpus, score

MATCHER = bundled_matcher()
SCORES = score(MATCHER)
RECALL_FLOOR = 1.0
PRECISION_FLOOR = 1.0


def test_every_bundled_secret_rule_has_labelled_examples():
    entries, _ = load_corpus()
    covered = {e["rule"] for e in entries if len(e.get("positives") or []) >= 3 and e.get("negatives")}
    rules = {r.id for r in MATCHER.ruleset.rules if r.kind == "secret"}
    assert sorted(rules - covered) == []
    assert len(rules) >= 150


def test_corpus_names_only_existing_rules():
    entries, _ = load_corpus()
    assert sorted({e["rule"] for e in entries} - {r.id for r in MATCHER.ruleset.rules}) == []


@pytest.mark.parametrize("family", sorted(SCORES))
def test_family_recall_and_precision(family):
    s = SCORES[family]
    assert s.recall >= RECALL_FLOOR, "\n".join(s.misses)
    assert s.precision >= PRECISION_FLOOR, "\n".join(s.flagged)


def test_keywords_are_distinctive():
    """A keyword is the prefilter: one that is too short fires on most lines of code."""
    weak = sorted((r.id, k) for r in MATCHER.ruleset.rules for k in r.keywords if len(k) < 3 and k not in ("@", "+"))
    assert weak == []
