"""Scoring the unseen set: recall per family and syntax (either tier, and `certain`), and the
tiers of findings on the near-misses."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from tests.corpus.matrix.score import Detector, MatrixScore
from tests.corpus.matrix.score import score as score_cases
from tests.corpus.unseen.generate import cases
from tests.corpus.unseen.nearmiss import NEAR_MISSES

BASELINE = Path(__file__).with_name("baseline.json")


@dataclass
class UnseenScore:
    matrix: MatrixScore
    near_misses: int = 0
    certain_on_near_misses: list[str] = field(default_factory=list)
    likely_on_near_misses: list[str] = field(default_factory=list)


def score(detect: Detector) -> UnseenScore:
    # The matrix scorer also runs its own hard negatives; here they are not counted.
    matrix = score_cases(detect, cases())
    result = UnseenScore(matrix)
    for text in NEAR_MISSES:
        result.near_misses += 1
        tiers = {d.tier for d in detect(text)}
        if "certain" in tiers:
            result.certain_on_near_misses.append(text)
        elif tiers:
            result.likely_on_near_misses.append(text)
    return result


def load_baseline() -> dict[str, float]:
    """Recall per family when the baseline was last written (an explicit command)."""
    return dict(json.loads(BASELINE.read_text())["families"]) if BASELINE.exists() else {}


def write_baseline(result: UnseenScore) -> None:
    doc = {
        "about": "Recall per family on the unseen set; the build fails if one falls below it. "
        "Rewrite with: python bench/unseen_report.py --update-baseline",
        "families": {f: math.floor(t.recall * 10000) / 10000 for f, t in sorted(result.matrix.families.items())},
    }
    BASELINE.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
