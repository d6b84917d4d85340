"""The rules that keep chance resemblances from matching: one file must hold the minimum on its
own, with enough distinct fingerprints, and a long text is lexed only around several known keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from egress.core.provenance import IndexedFile
from egress.provenance.indexer import changed_files, fingerprint_files
from egress.provenance.lookup import SHORT_TEXT, Lookup, LookupSettings
from egress.provenance.shapes import line_keys
from egress.provenance.sources import DirectorySource
from egress.provenance.tokens import Normaliser
from tests.unit.provenance.test_index import PAYMENTS, RISK

TABLE = "KEYS = {\n" + "".join(f"    _curses.KEY_F{i}: 'kf{i}',\n" for i in range(60)) + "}\n"
PROSE = "The retry loop gave up after three attempts; is the timeout too short for the runner?\n" * 50


def rows_of(tmp_path: Path, files: dict[str, str]) -> list[tuple[str, IndexedFile]]:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    source = DirectorySource(tmp_path)
    _, todo = changed_files(source, {})
    return [("billing", f) for f in fingerprint_files(source, todo)]


def test_one_file_must_hold_the_minimum_alone(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {"payments.py": PAYMENTS, "risk.py": RISK})
    loose = LookupSettings(min_tokens=1, min_lines=1, min_distinct=1, precheck=False)
    lookup = Lookup.build(rows, frozenset(), loose)
    a = "\n".join(PAYMENTS.strip("\n").split("\n")[8:14])
    b = "\n".join(RISK.strip("\n").split("\n")[2:9])
    (ma,), (mb,) = lookup.match(a), lookup.match(b)
    # A minimum that neither half reaches alone, but both together would.
    strict = LookupSettings(min_tokens=max(ma.tokens, mb.tokens) + 1, min_lines=1, min_distinct=1, precheck=False)
    assert ma.tokens + mb.tokens >= strict.min_tokens
    assert Lookup.build(rows, frozenset(), strict).match(a + "\n" + b) == ()
    both = Lookup.build(rows, frozenset(), loose).match(a + "\n" + b)
    assert both[0].tokens >= strict.min_tokens and set(both[0].paths) == {"payments.py", "risk.py"}


def test_a_repetitive_table_needs_distinct_fingerprints(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, {"keys.py": TABLE, "payments.py": PAYMENTS})
    other = "MAP = {\n" + "".join(f"    colors.SHADE_{i}: 'shade{i}',\n" for i in range(12)) + "}\n"
    assert Lookup.build(rows, frozenset(), LookupSettings(precheck=False)).match(other) == ()
    loose = Lookup.build(rows, frozenset(), LookupSettings(precheck=False, min_distinct=1))
    assert [m.repo for m in loose.match(other)] == ["billing"]  # only the distinct rule rejected it
    # Real code keeps matching.
    assert [m.repo for m in Lookup.build(rows, frozenset()).match(PAYMENTS)] == ["billing"]


def test_a_long_text_is_lexed_only_around_several_known_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rows_of(tmp_path, {"payments.py": PAYMENTS, "risk.py": RISK})
    lines = PAYMENTS.strip("\n").split("\n")
    # The shortest run of lines from the start that holds exactly one key.
    three = next("\n".join(lines[:n]) for n in range(3, len(lines)) if len(line_keys("\n".join(lines[:n]))[0]) == 1)
    text = PROSE + three + "\n" + PROSE
    assert text.count("\n") >= SHORT_TEXT
    lexed: list[str] = []
    original = Normaliser.tokens
    monkeypatch.setattr(Normaliser, "tokens", lambda self, t: lexed.append(t) or original(self, t))
    Lookup.build(rows, frozenset()).match(text)
    assert lexed == []  # one known key in a long text: never lexed
    Lookup.build(rows, frozenset(), LookupSettings(min_keys=1)).match(text)
    assert lexed  # the same text with min_keys=1 is lexed
    lexed.clear()
    Lookup.build(rows, frozenset()).match(three)
    assert lexed  # a short text is lexed on one key


DOCUMENTED = (
    "def score(transaction, history, limits):\n"
    '    """Risk of a transaction, 0..100.\n'
    "\n"
    "    Foreign cards and large amounts add points; the total is capped.\n"
    '    """\n' + "\n".join(RISK.strip("\n").split("\n")[2:]) + "\n"
)


def test_an_excerpt_starting_inside_a_docstring_is_read_as_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = rows_of(tmp_path, {"risk.py": DOCUMENTED})
    lookup = Lookup.build(rows, frozenset(), LookupSettings(precheck=False))
    inside = "\n".join(DOCUMENTED.split("\n")[3:])  # from the docstring's second line: one `"""`
    assert [m.repo for m in lookup.match(inside)] == ["billing"]
    lexed: list[str] = []
    original = Normaliser.tokens
    monkeypatch.setattr(Normaliser, "tokens", lambda self, t: lexed.append(t) or original(self, t))
    assert [m.repo for m in lookup.match(DOCUMENTED)] == ["billing"]
    assert len(lexed) == 1  # balanced triple quotes: read once, not also as if inside a string
    lexed.clear()
    Lookup.build(rows, frozenset(), LookupSettings(precheck=False, odd_quotes_only=False)).match(DOCUMENTED)
    assert len(lexed) == 3
