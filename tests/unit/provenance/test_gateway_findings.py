"""Indexed code as the inspect stage finds it and the policy sees it: a real store, a real index."""

from __future__ import annotations

from pathlib import Path

from egress.core.exchange import Prompt, SegmentKind, TextSegment
from egress.core.provenance import IndexedRepo
from egress.detect.engine import RuleMatcher
from egress.detect.rules import load_rules
from egress.detect.scan import Scanner, TextScanner
from egress.policy.decide import RequestFacts, policy_input
from egress.provenance.indexer import changed_files, fingerprint_files
from egress.provenance.live import LiveIndex
from egress.provenance.sources import open_source
from egress.store.sqlite import SqliteStore
from tests.unit.provenance.test_index import PAYMENTS, RISK

RULE = """
[[rules]]
id = "tok"
regex = '''\\b(tok_[a-z0-9]{12})\\b'''
keywords = ["tok_"]
"""


def add(store: SqliteStore, name: str, folder: Path, files: dict[str, str]) -> None:
    folder.mkdir()
    for path, text in files.items():
        (folder / path).write_text(text)
    source = open_source(folder, None)
    _, todo = changed_files(source, {})
    store.provenance_put(
        IndexedRepo(name, False, str(folder), None, None, 1.0, 0, 0, 0, 0), fingerprint_files(source, todo), None
    )


def prompt(*texts: str) -> Prompt:
    return Prompt(tuple(TextSegment(("messages", i), t, SegmentKind.MESSAGE) for i, t in enumerate(texts)))


def test_code_findings_share_the_segment_cache_and_follow_the_index(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "egress.db")
    store.migrate()
    add(store, "payments", tmp_path / "payments", {"ledger.py": PAYMENTS})
    live = LiveIndex(store)
    text_scanner = TextScanner(RuleMatcher(load_rules([("t.toml", RULE)])), code=live.match)
    live.on_change(text_scanner.forget)
    assert live.refresh() and not live.refresh()  # the second finds the same generation
    scanner = Scanner(text_scanner)

    excerpt = "\n".join(PAYMENTS.split("\n")[9:25]).replace("account", "customer")
    found = scanner.scan(prompt("what does this do? tok_abcdef123456", excerpt))
    assert [(f.kind, f.rule_id, f.segment) for f in found] == [
        ("secret", "tok", 0),
        ("proprietary_code", "proprietary-code:payments", 1),
    ]
    code = found[1].code
    assert code is not None and code.repo == "payments" and code.lines >= 14 and code.share > 0.9
    assert found[1].start == 0 and found[1].end == len(excerpt) and "payments: " in found[1].preview
    assert excerpt not in found[1].preview

    # A resent conversation costs nothing new: both texts come from the cache.
    hits = text_scanner.hits
    assert scanner.scan(prompt("what does this do? tok_abcdef123456", excerpt)) == found
    assert text_scanner.hits == hits + 2

    # The index changes: cached results are dropped, the new repository is found.
    risk = "\n".join(RISK.split("\n")[1:13])
    assert [f.kind for f in scanner.scan(prompt(risk))] == []
    add(store, "risk", tmp_path / "risk", {"score.py": RISK})
    assert live.refresh()
    assert [f.rule_id for f in scanner.scan(prompt(risk))] == ["proprietary-code:risk"]
    store.close()


def test_the_policy_input_summarises_code_by_repository(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "egress.db")
    store.migrate()
    add(store, "payments", tmp_path / "payments", {"ledger.py": PAYMENTS})
    live = LiveIndex(store)
    live.refresh()
    scanner = Scanner(TextScanner(RuleMatcher(load_rules([("t.toml", RULE)])), code=live.match))
    whole, part = PAYMENTS, "\n".join(PAYMENTS.split("\n")[9:16])
    findings = scanner.scan(prompt(whole, "unrelated words here", part))
    facts = RequestFacts("anthropic.messages", "claude-x", True, "dev", None, "claude-code", None)
    document = policy_input(facts, findings, ())
    repo = document["code"]["repos"]["payments"]
    assert repo["segments"] == 2 and repo["lines"] == document["code"]["lines"] >= 15
    assert repo["share"] == document["code"]["share"] > 0.9
    assert document["findings"]["kinds"] == {"proprietary_code": 2}
    empty = policy_input(facts, (), ())
    assert empty["code"] == {"repos": {}, "lines": 0, "share": 0.0}
    store.close()
