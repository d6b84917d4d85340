"""The line-shape pre-check (shapes.py): a text that cannot hold indexed code is never lexed, and
the pre-check never loses a match that lexing the whole text finds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from egress.core.provenance import IndexedFile
from egress.provenance.indexer import changed_files, fingerprint_files
from egress.provenance.lookup import Lookup, LookupSettings
from egress.provenance.shapes import line_keys, shapes
from egress.provenance.sources import DirectorySource
from egress.provenance.tokens import Normaliser
from tests.integration.test_code_provenance import INVOICES, LEDGER
from tests.unit.provenance.test_index import PAYMENTS, RISK

FILES = {"invoices.py": INVOICES, "ledger.py": LEDGER, "payments.py": PAYMENTS, "risk.py": RISK}
PROSE = (
    "The build failed on the integration runner again. I looked at the log and the retry\n"
    "loop gave up after three attempts; could you check whether the timeout is too short?\n"
) * 40
OTHER_CODE = Path(re.__file__).read_text()  # code that is not indexed


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, IndexedFile]]:
    root = tmp_path_factory.mktemp("billing")
    for name, text in FILES.items():
        (root / name).write_text(text)
    source = DirectorySource(root)
    _, todo = changed_files(source, {})
    return [("billing", f) for f in fingerprint_files(source, todo)]


@pytest.fixture(scope="module")
def checked(rows: list[tuple[str, IndexedFile]]) -> Lookup:
    return Lookup.build(rows, frozenset())


@pytest.fixture(scope="module")
def whole(rows: list[tuple[str, IndexedFile]]) -> Lookup:
    return Lookup.build(rows, frozenset(), LookupSettings(precheck=False))


def never_lexed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    lexed: list[str] = []
    monkeypatch.setattr(Normaliser, "tokens", lambda self, text: lexed.append(text) or pytest.fail("lexed"))
    return lexed


def test_shapes_survive_what_agents_do_to_code() -> None:
    plain = shapes("    total = price(item, 2)  # net\nif x is None:\n    return y")
    assert plain == [b"w=w(w,w)", b"ifwisNone:", b"returnw"]
    assert shapes("     12→  amount = cost(thing, 7)\n+if z is None:\n   return q") == plain
    # A diff's old side is skipped: a changed line (old and new) counts once, as the new one.
    assert line_keys("-a = b(c)\n+a = b(c, d)\n e = f[g]\n h.i(j)")[1].tolist() == [1, 2, 3]


def test_no_code_index_costs_no_lexing(monkeypatch: pytest.MonkeyPatch) -> None:
    never_lexed(monkeypatch)
    assert Lookup.empty().match(INVOICES + PROSE) == ()


def test_text_without_indexed_line_shapes_is_never_lexed(monkeypatch: pytest.MonkeyPatch, checked: Lookup) -> None:
    assert checked.shapes is not None and len(checked.shapes)
    never_lexed(monkeypatch)
    assert checked.match(PROSE) == ()
    assert checked.match(OTHER_CODE[:32_000]) == ()


def test_files_indexed_before_shape_keys_are_lexed_whole(rows: list[tuple[str, IndexedFile]]) -> None:
    old = [(repo, IndexedFile(f.path, f.digest, f.language, f.lines, f.hashes, f.starts)) for repo, f in rows]
    lookup = Lookup.build(old, frozenset())
    assert lookup.shapes is None
    assert [m.repo for m in lookup.match(PAYMENTS)] == ["billing"]


def test_keys_need_three_kept_lines() -> None:
    assert len(line_keys("a = b(c)\n\n# note\nd = e(f)")[0]) == 0
    keys, kept = line_keys("a = b(c)\n\n# note\nd = e(f)\nreturn g + h\nk[0] = 1")
    assert len(keys) == 2 and kept.tolist() == [0, 3, 4, 5]


_RENAME = re.compile(r"\b(?!(?:def|class|return|if|else|for|in|is|not|None|and|or|raise|self|while|del)\b)[a-z_]\w*")


def transform(text: str, how: str) -> str:
    if how == "rename":
        return _RENAME.sub(lambda m: m.group(0)[::-1] + "_x", text)
    if how == "reindent":
        return "\n".join(
            re.sub(r"^( {4})+", lambda m: "\t" * (len(m.group(0)) // 4), line) for line in text.split("\n")
        )
    if how == "numbered":
        return "\n".join(f"{i + 40:>6}→{line}" for i, line in enumerate(text.split("\n")))
    if how == "comments":
        return "\n".join(line + "  # see the ticket" if line.strip() else line for line in text.split("\n"))
    if how == "diff":
        return "@@ -40,9 +40,9 @@\n" + "\n".join(" " + line for line in text.split("\n"))
    if how == "embedded":
        return PROSE[:400] + "```python\n" + text + "\n```\n" + PROSE[:300]
    return text


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    name=st.sampled_from(sorted(FILES)),
    start=st.integers(0, 60),
    size=st.integers(5, 40),
    how=st.sampled_from(["none", "rename", "reindent", "numbered", "comments", "diff", "embedded"]),
)
def test_the_precheck_never_loses_a_match(
    checked: Lookup, whole: Lookup, name: str, start: int, size: int, how: str
) -> None:
    lines = FILES[name].split("\n")
    excerpt = "\n".join(lines[min(start, max(0, len(lines) - size)) :][:size])
    # The pre-check's premise: the excerpt holds three consecutive kept lines (not blank, not a
    # comment, not an import, a shape of at least three characters). Shorter ones are not looked at.
    assume(len(line_keys(excerpt)[0]) > 0)
    text = transform(excerpt, how)
    expected = {m.repo: m for m in whole.match(text)}
    found = {m.repo: m for m in checked.match(text)}
    assert found.keys() == expected.keys(), text
    for repo, m in found.items():
        assert m.tokens >= expected[repo].tokens * 0.9  # the regions hold (nearly) every matched token
