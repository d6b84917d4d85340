"""The rule engine with gitleaks-format rules: semantics, allowlists, linear time, caching."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.core.exchange import Prompt, SegmentKind, TextSegment
from egress.detect.engine import RuleMatcher
from egress.detect.rules import RuleError, bundled_files, load_rule_files, load_rules
from egress.detect.scan import Scanner, TextScanner, redact
from tests.support.corpus import bundled_matcher

CUSTOM = """
title = "acme custom rules"

[[rules]]
id = "acme-deploy-token"
description = "ACME deploy token"
regex = \'\'\'(?i)acme[_-]?deploy[_-]?token\\s*[:=]\\s*["']?(adt_[a-z0-9]{24})\\b\'\'\'
secretGroup = 1
keywords = ["adt_"]
entropy = 3.0

[[rules.allowlists]]
regexTarget = "line"
regexes = [\'\'\'# ci-fixture\'\'\']

[[rules]]
id = "mixed-case-flag"
description = "a flag group in the middle of the pattern"
regex = \'\'\'(?i)build-key-(?-i:LIVE)-([0-9]{6})\'\'\'
keywords = ["build-key"]

[[rules]]
id = "no-keywords"
regex = \'\'\'\\bZZ9[0-9]{9}\\b\'\'\'

[allowlist]
description = "global"
stopwords = ["notreal"]
"""


def matcher(text: str) -> RuleMatcher:
    return RuleMatcher(load_rules([("custom.toml", text)]))


def ids(m: RuleMatcher, text: str) -> list[tuple[str, str]]:
    return [(x.rule.id, x.secret) for x in m.scan(text)]


def test_secret_group_keywords_entropy_and_line_allowlist():
    m = matcher(CUSTOM)
    assert ids(m, 'ACME_DEPLOY_TOKEN="adt_k3j9x0q2m8v7c6b5n4z1l0p9"') == [
        ("acme-deploy-token", "adt_k3j9x0q2m8v7c6b5n4z1l0p9")
    ]
    assert ids(m, 'ACME_DEPLOY_TOKEN="adt_aaaaaaaaaaaaaaaaaaaaaaaa"') == []  # below the entropy floor
    assert ids(m, 'ACME_DEPLOY_TOKEN="adt_k3j9x0q2m8v7c6b5n4z1l0p9"  # ci-fixture') == []


def test_global_stopwords():
    m = matcher(CUSTOM.replace("(adt_[a-z0-9]{24})", "(adt_[a-z0-9]{24}|adt_notreal[a-z0-9]{17})"))
    assert ids(m, "acme_deploy_token: adt_notreal1a2b3c4d5e6f7g8h9") == []


def test_flag_group_in_the_middle_behaves_as_re2():
    m = matcher(CUSTOM)
    assert ids(m, "BUILD-KEY-LIVE-834201") == [("mixed-case-flag", "834201")]
    assert ids(m, "build-key-LIVE-834201") == [("mixed-case-flag", "834201")]
    assert ids(m, "build-key-live-834201") == []  # (?-i:LIVE) stays case-sensitive


def test_rule_without_keywords_runs_everywhere():
    m = matcher(CUSTOM)
    assert ids(m, "x ZZ9123456789 y") == [("no-keywords", "ZZ9123456789")]


def test_extend_default_adds_to_bundled_rules_and_can_disable_and_override():
    user = """
[extend]
useDefault = true
disabledRules = ["pii-ipv4"]

[[rules]]
id = "pii-email"
[[rules.allowlists]]
regexTarget = "secret"
regexes = [\'\'\'@acme\\.internal$\'\'\']
""" + CUSTOM.split("[allowlist]")[0]
    ruleset = load_rule_files([("user.toml", user)])
    found = {r.id for r in ruleset.rules}
    assert {"acme-deploy-token", "pii-email", "pii-iban"} <= found
    assert "pii-ipv4" not in found
    m = RuleMatcher(ruleset)
    text = "mail bob@acme.internal and carol@customer-corp.de from 198.51.100.7"
    assert [x.secret for x in m.scan(text) if x.rule.id.startswith("pii-")] == ["carol@customer-corp.de"]


def test_a_file_without_extend_replaces_the_bundled_rules():
    ruleset = load_rule_files([("user.toml", CUSTOM)])
    assert {r.id for r in ruleset.rules} == {"acme-deploy-token", "mixed-case-flag", "no-keywords"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[rules]]\nid = 'x'\nregex = '(a'", "does not compile under RE2"),
        ("[[rules]]\nid = 'x'\nregex = '(?=a)'", "does not compile under RE2"),  # no lookahead in RE2
        ("[[rules]]\nid = 'x'\nregex = 'a'\nsecretGroup = 2", "secretGroup 2 but the regex has 0 groups"),
        ("[[rules]]\nregex = 'a'", "needs a string `id`"),
        ("[[rules]]\nid = 'x'", "needs a `regex` or a `path`"),
        ("[[rules]]\nid = 'x'\nregex = 'a'\nvalidator = 'nope'", "unknown validator"),
        ("not toml [", "not valid TOML"),
    ],
)
def test_bad_rule_files_are_named(text, message):
    with pytest.raises(RuleError) as info:
        load_rules([("bad.toml", text)])
    assert "bad.toml" in str(info.value) and message in str(info.value)


def test_matching_is_linear_on_pathological_input():
    # (a|aa)+$ against "aaaa…b" takes exponential time in a backtracking engine.
    m = matcher("[[rules]]\nid = 'evil'\nregex = '''(?:a|aa)+$'''\n")
    assert m.scan("a" * 50_000 + "b") == []


def test_bundled_rules_all_load_and_compile():
    ruleset = load_rules(bundled_files())
    assert len({r.id for r in ruleset.rules}) == len(ruleset.rules)
    assert RuleMatcher(ruleset).rule_count == len([r for r in ruleset.rules if r.regex])


# --- findings and the incremental cache --------------------------------------------------------

BUNDLED = bundled_matcher()

PLANTS = [
    "jane.roe@northwind-traders.de",
    "+49 30 901820",
    "DE89 3704 0044 0532 0130 00",
    "4539 1488 0343 6467",
    "198.51.100.23",
]


@st.composite
def texts_with_plants(draw):
    words = draw(
        st.lists(
            st.sampled_from(
                ["def", "x", "=", "return", "\n", "    ", "(", ")", "token", "ok", "S3", "v1.2.3", "uuid", "# note"]
            ),
            max_size=40,
        )
    )
    plants = draw(st.lists(st.sampled_from(PLANTS), max_size=3))
    pieces = words + plants
    draw(st.randoms()).shuffle(pieces)
    return " ".join(pieces)


@settings(max_examples=150, deadline=None)
@given(text=texts_with_plants())
def test_spans_lie_inside_the_text_and_cover_the_value(text):
    for match in BUNDLED.scan(text):
        assert 0 <= match.start < match.end <= len(text)
        assert text[match.start : match.end] == match.secret


@settings(max_examples=60, deadline=None)
@given(blocks=st.lists(texts_with_plants(), min_size=1, max_size=6), seed=st.integers())
def test_warm_cache_finds_exactly_what_a_cold_scan_finds(blocks, seed):
    prompt = Prompt(tuple(TextSegment(("messages", i), b, SegmentKind.MESSAGE) for i, b in enumerate(blocks)))
    cold = Scanner(TextScanner(BUNDLED)).scan(prompt)
    warm_scanner = Scanner(TextScanner(BUNDLED))
    rng = random.Random(seed)
    for _ in range(3):  # earlier turns: other prompts that share some of these blocks
        earlier = [b for b in blocks if rng.random() < 0.5] + ["unrelated " + rng.choice(PLANTS)]
        rng.shuffle(earlier)
        warm_scanner.scan(Prompt(tuple(TextSegment(("m", i), b, SegmentKind.MESSAGE) for i, b in enumerate(earlier))))
    assert warm_scanner.scan(prompt) == cold


def test_resent_conversation_scans_only_new_blocks():
    scanner = TextScanner(BUNDLED)
    history = [f"turn {i}: " + "".join(random.choices(string.ascii_letters, k=2000)) for i in range(50)]
    wrapper = Scanner(scanner)
    wrapper.scan(Prompt(tuple(TextSegment(("m", i), t, SegmentKind.MESSAGE) for i, t in enumerate(history))))
    misses = scanner.misses
    history.append("turn 50: new text with jane.roe@northwind-traders.de")
    findings = wrapper.scan(Prompt(tuple(TextSegment(("m", i), t, SegmentKind.MESSAGE) for i, t in enumerate(history))))
    assert scanner.misses == misses + 1 and scanner.hits >= 50
    assert [(f.segment, f.rule_id) for f in findings] == [(50, "pii-email")]


def test_cache_is_bounded():
    scanner = TextScanner(BUNDLED, cache_chars=10_000)
    for i in range(100):
        scanner.scan_text(f"{i} " + "x" * 500)
    assert scanner._cache_chars <= 10_000


def test_preview_never_holds_the_value():
    secret = "adt_k3j9x0q2m8v7c6b5n4z1l0p9"
    assert redact(secret) == "adt_…(28 chars)"
    assert redact("hunter2") == "…(7 chars)"


# --- the whole-pattern prefilter is an optimisation, never a change in findings -----------------

WITHOUT_PREFILTER = RuleMatcher(load_rules(bundled_files()), whole_patterns=False)


def _found(matcher, text):
    return sorted((m.rule.id, m.start, m.end) for m in matcher.scan(text))


def test_prefilter_finds_exactly_what_the_keyword_path_finds_on_the_corpus():
    from tests.support.corpus import load_corpus

    entries, negatives = load_corpus()
    texts = [ex["text"] for e in entries for ex in (e.get("positives") or []) + (e.get("negatives") or [])]
    texts += [n["text"] for n in negatives]
    assert len(texts) > 1500
    for text in texts:
        assert _found(BUNDLED, text) == _found(WITHOUT_PREFILTER, text), text


@settings(max_examples=100, deadline=None)
@given(text=texts_with_plants())
def test_prefilter_finds_exactly_what_the_keyword_path_finds(text):
    assert _found(BUNDLED, text) == _found(WITHOUT_PREFILTER, text)


def _non_ascii_variants(text: str) -> list[str]:
    """The text among non-ASCII characters: before, after, inside lines, inside values."""
    mid = len(text) // 2
    return [
        "José Müller → " + text,
        text + " — ünïcödé € 中文 😀",
        text.replace("\n", "\n\u00e9 ", 1),
        text[:mid] + "\u00e9" + text[mid:],
        text.replace("s", "\u017f").replace("k", "\u212a"),  # RE2's case folding maps these to ASCII
    ]


def test_non_ascii_texts_find_exactly_what_the_keyword_path_finds_on_the_corpus():
    """Non-ASCII text goes through the whole-pattern prefilter as its stand-in (engine._stand_in):
    an optimisation that must never change a finding."""
    from tests.support.corpus import load_corpus

    entries, negatives = load_corpus()
    texts = [ex["text"] for e in entries for ex in (e.get("positives") or []) + (e.get("negatives") or [])]
    texts += [n["text"] for n in negatives]
    for text in texts:
        for variant in _non_ascii_variants(text):
            assert _found(BUNDLED, variant) == _found(WITHOUT_PREFILTER, variant), variant


@settings(max_examples=150, deadline=None)
@given(text=texts_with_plants(), filler=st.text(alphabet="é→€中😀\u017f\u212a\u00a0ü", min_size=1, max_size=6), at=st.integers(0, 10_000))
def test_non_ascii_prefilter_finds_exactly_what_the_keyword_path_finds(text, filler, at):
    at %= len(text) + 1
    mixed = text[:at] + filler + text[at:]
    assert _found(BUNDLED, mixed) == _found(WITHOUT_PREFILTER, mixed)
