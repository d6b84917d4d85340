"""The matrix corpus (tests/corpus/matrix): every family × syntax cell that passed when the
baseline was written still passes, and no hard negative gets a finding of any tier.

The baseline (tests/corpus/matrix/baseline.json) is rewritten only on purpose:
`python bench/matrix_report.py --update-baseline`."""

from __future__ import annotations

import pytest

from tests.corpus.matrix.detector import egress_detector
from tests.corpus.matrix.generate import cases
from tests.corpus.matrix.score import MatrixScore, load_baseline, score
from tests.corpus.matrix.syntaxes import SYNTAXES


@pytest.fixture(scope="module")
def result() -> MatrixScore:
    return score(egress_detector())


def test_the_matrix_is_deterministic_and_wide():
    first, again = cases(), cases()
    assert first == again
    assert len(SYNTAXES) >= 30
    assert {c.group for c in first} == {"vendor", "generic"}
    languages = {s.language for s in SYNTAXES}
    for language in ("python", "go", "java", "csharp", "php", "javascript", "typescript", "ruby", "shell", "sql",
                     "yaml", "json", "xml", "ini", "dockerfile", "terraform", "dotenv", "output"):  # fmt: skip
        assert language in languages
    assert cases(seed=15) != first  # the seed is what the values come from


def test_every_case_labels_its_value():
    for case in cases(per_cell=1):
        value = case.text[case.start : case.end]
        assert value and case.text.count(value) == 1, case


def test_no_cell_that_passed_before_fails(result):
    baseline = load_baseline()
    assert len(baseline) >= 1000  # the committed baseline was read
    dropped = [cell for cell in baseline if result.cells[cell].found < result.cells[cell].cases]
    detail = "\n".join(f"{cell}: {result.misses[cell][0][:120]!r}" for cell in dropped[:40])
    assert dropped == [], f"{len(dropped)} cells stopped passing:\n{detail}"


def test_baseline_names_only_cells_the_generator_makes(result):
    assert sorted(set(load_baseline()) - set(result.cells)) == []


def test_no_finding_of_any_tier_on_hard_negatives(result):
    assert result.negatives >= 300
    assert result.flagged_negatives == []
