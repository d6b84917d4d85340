"""The held-apart unseen set (tests/corpus/unseen): recall per family never falls below the
committed baseline, and no near-miss gets a `certain` finding (those block, hold or reroute).

The baseline (tests/corpus/unseen/baseline.json) is rewritten only on purpose:
`python bench/unseen_report.py --update-baseline`."""

from __future__ import annotations

import pytest

from tests.corpus.matrix.detector import egress_detector
from tests.corpus.unseen.generate import cases
from tests.corpus.unseen.generic import GENERIC_SYNTAXES
from tests.corpus.unseen.nearmiss import NEAR_MISSES
from tests.corpus.unseen.score import UnseenScore, load_baseline, score
from tests.corpus.unseen.vendors import VENDORS


@pytest.fixture(scope="module")
def result() -> UnseenScore:
    return score(egress_detector())


def test_the_set_is_deterministic_and_wide():
    first = cases()
    assert first == cases()
    assert cases(seed=7) != first
    assert len(VENDORS) >= 25 and len(GENERIC_SYNTAXES) >= 80 and len(NEAR_MISSES) >= 50
    assert {c.group for c in first} == {"vendor", "generic"}


def test_every_case_labels_its_value_once():
    for case in cases(per_cell=1):
        value = case.text[case.start : case.end]
        assert value and case.text.count(value) == 1, case


def test_no_family_falls_below_the_baseline(result):
    baseline = load_baseline()
    assert len(baseline) == len(result.matrix.families)  # the committed baseline was read, and is current
    fallen = {
        family: (floor, round(result.matrix.families[family].recall, 4))
        for family, floor in baseline.items()
        if result.matrix.families[family].recall + 1e-9 < floor
    }
    assert fallen == {}, f"recall fell (baseline, now): {fallen}"


def test_no_near_miss_is_certain(result):
    assert result.near_misses == len(NEAR_MISSES)
    assert result.certain_on_near_misses == []
