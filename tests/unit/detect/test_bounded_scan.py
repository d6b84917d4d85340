"""Bounded inspection: merging is O(n log n), a secret-dense text becomes one finding, a scan
stops at its budget, and the non-ASCII and line-allowlist paths stay linear and exact."""

from __future__ import annotations

import math
import random
import string
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Prompt, SegmentKind, TextSegment
from egress.detect.budget import Budget, BudgetExceeded
from egress.detect.engine import _LINE_WINDOW, Match, RuleMatcher, _CharOffsets
from egress.detect.rules import Rule, load_rules
from egress.detect.scan import DENSE_RULE_ID, Scanner, TextScanner, merge
from tests.support.corpus import bundled_matcher


def reference_merge(matches: list[Match]) -> list[Match]:
    """The merge semantics, written the obvious (quadratic) way."""
    ranked = sorted(matches, key=lambda m: (-m.rule.confidence, -(m.end - m.start), m.start, m.rule.id))
    kept: list[Match] = []
    for match in ranked:
        if any(k.rule.kind == match.rule.kind and k.start < match.end and match.start < k.end for k in kept):
            continue
        kept.append(match)
    kept.sort(key=lambda m: (m.start, m.end, m.rule.id))
    return kept


RULES = [
    Rule(id=f"r{i}", kind=kind, confidence=conf)
    for i, (kind, conf) in enumerate(
        [("secret", 0.9), ("secret", 0.9), ("secret", 0.7), ("pii", 0.9), ("pii", 0.5), ("secret", 1.0)]
    )
]

spans = st.lists(st.tuples(st.integers(0, len(RULES) - 1), st.integers(0, 60), st.integers(1, 12)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(spans)
def test_merge_equals_the_reference_on_random_spans(raw):
    matches = [Match(RULES[r], start, start + length, "x" * length) for r, start, length in raw]
    assert merge(matches) == reference_merge(matches)
    assert [id(m) for m in merge(matches)] == [id(m) for m in reference_merge(matches)]


class Counted(int):
    """An offset that counts the comparisons made with it."""

    count = [0]

    def __lt__(self, other):  # type: ignore[override]
        Counted.count[0] += 1
        return int.__lt__(self, other)

    def __gt__(self, other):  # type: ignore[override]
        Counted.count[0] += 1
        return int.__gt__(self, other)

    def __le__(self, other):  # type: ignore[override]
        Counted.count[0] += 1
        return int.__le__(self, other)

    def __ge__(self, other):  # type: ignore[override]
        Counted.count[0] += 1
        return int.__ge__(self, other)

    def __eq__(self, other):  # type: ignore[override]
        Counted.count[0] += 1
        return int.__eq__(self, other)

    __hash__ = int.__hash__


def comparisons(n: int) -> int:
    """Comparisons to merge n matches: secret-dense text where two rules of a kind overlap in a
    chain (one long cluster) and a third kind sits on every value."""
    rng = random.Random(n)
    matches = []
    for i in range(n // 3):
        at = i * 30
        matches.append(Match(RULES[0], Counted(at), Counted(at + 20), "v"))
        matches.append(Match(RULES[1], Counted(at + 10), Counted(at + 35), "v"))
        matches.append(Match(RULES[3], Counted(at + rng.randrange(5)), Counted(at + 22), "v"))
    rng.shuffle(matches)
    Counted.count[0] = 0
    merge(matches)
    return Counted.count[0]


def test_merging_8000_matches_takes_n_log_n_comparisons():
    small, large = comparisons(9_000), comparisons(18_000)
    # Quadratic work would grow 4x per doubling; n log n grows a little over 2x.
    assert large / small < 2.6
    assert large < 40 * 18_000 * math.log2(18_000)


def test_a_chain_of_overlaps_merges_like_the_reference():
    matches = []
    for i in range(3_000):
        matches.append(Match(RULES[0], i * 10, i * 10 + 15, "v"))
        matches.append(Match(RULES[2], i * 10 + 5, i * 10 + 30, "v"))
    assert merge(matches) == reference_merge(matches)


ALNUM = string.ascii_letters + string.digits


def glpat_text(n: int, seed: int = 1) -> str:
    rng = random.Random(seed)
    return " ".join("glpat-" + "".join(rng.choice(ALNUM) for _ in range(20)) for _ in range(n))


def test_a_secret_dense_text_is_one_finding_over_the_whole_text():
    scanner = TextScanner(bundled_matcher(), max_findings=50)
    text = "notes:\n" + glpat_text(51)
    (finding,) = scanner.scan_text(text)
    assert (finding.rule_id, finding.kind, finding.start, finding.end, finding.confidence) == (
        DENSE_RULE_ID,
        "secret",
        0,
        len(text),
        1.0,
    )
    assert "glpat" not in finding.preview
    # At the cap, each value is still its own finding.
    assert len(TextScanner(bundled_matcher(), max_findings=50).scan_text(glpat_text(50))) == 50


def test_past_the_cap_for_the_request_every_text_with_findings_is_dense():
    scanner = Scanner(TextScanner(bundled_matcher(), max_findings=30))
    texts = [glpat_text(20, seed=1), "no secrets here", glpat_text(20, seed=2)]
    prompt = Prompt(segments=tuple(TextSegment(("messages", i), t, SegmentKind.MESSAGE) for i, t in enumerate(texts)))
    findings = scanner.scan(prompt)
    assert [(f.segment, f.rule_id, f.start, f.end) for f in findings] == [
        (0, DENSE_RULE_ID, 0, len(texts[0])),
        (2, DENSE_RULE_ID, 0, len(texts[2])),
    ]


def test_a_scan_past_its_budget_stops():
    matcher = bundled_matcher()
    text = glpat_text(1_500)
    ticks = iter(range(10**9))
    budget = Budget(100, clock=lambda: next(ticks))  # 100 checks, whatever the machine's speed
    with pytest.raises(BudgetExceeded):
        TextScanner(matcher).scan_text(text, budget)
    assert next(ticks) < 200  # it stopped right after the budget ran out
    # Not cached: the same text with enough budget is scanned in full.
    assert len(TextScanner(matcher).scan_text(text, Budget(10**9, clock=lambda: 0))) == 1_500


def test_concurrent_scans_on_threads_find_what_one_thread_finds():
    matcher = bundled_matcher()
    texts = [glpat_text(200, seed=s) + "\nAKIAIOSFODNN7EXAMPL3 " * 3 for s in range(6)]
    expected = [TextScanner(matcher).scan_text(t) for t in texts]
    shared = TextScanner(matcher)
    results: dict[int, object] = {}

    def work(i: int) -> None:
        for _ in range(3):
            results[i] = shared.scan_text(texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[i] for i in range(len(texts))] == expected


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=200), st.lists(st.integers(0, 200), max_size=20))
def test_char_offsets_agree_with_decoding_the_prefix(text, offsets):
    data = text.encode("utf-8", errors="replace")
    to_chars = _CharOffsets(data)
    for offset in [min(o, len(data)) for o in offsets]:
        assert to_chars(offset) == len(data[:offset].decode("utf-8", "replace"))


LINE_RULE = """
[[rules]]
id = "tok"
regex = '''\\b(tok_[a-z0-9]{12})\\b'''
keywords = ["tok_"]

[[rules.allowlists]]
regexTarget = "line"
regexes = ['''# fixture''']
"""


def test_a_line_allowlist_sees_the_line_around_the_value():
    m = RuleMatcher(load_rules([("line.toml", LINE_RULE)]))
    assert [x.secret for x in m.scan("a = tok_abcdef123456  # fixture\nb = tok_zzzzzz999999")] == ["tok_zzzzzz999999"]
    # On one huge line, the allowlist sees a window around each value, so a marker far away
    # does not allow it (recall is kept), and scanning stays linear.
    far = "tok_abcdef123456 " + "x" * 10_000 + " # fixture"
    assert [x.secret for x in m.scan(far)] == ["tok_abcdef123456"]
    rng = random.Random(3)
    values = " ".join(
        "tok_" + "".join(rng.choice(string.ascii_lowercase + string.digits) for _ in range(12)) for _ in range(20_000)
    )
    found = m.scan(values)
    assert len(found) > 19_000
    many = values + " # fixture"
    near_the_marker = [x for x in found if x.end + _LINE_WINDOW >= len(many)]
    assert 0 < len(near_the_marker) < 300
    assert m.scan(many) == [x for x in found if x not in near_the_marker]


def test_budget_on_the_wall_clock_bounds_a_thread_hold():
    budget = Budget(0.0, clock=time.perf_counter)
    time.sleep(0.001)
    with pytest.raises(BudgetExceeded):
        budget.check()
