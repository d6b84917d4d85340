"""Filtered exports with inclusion proofs, on real stores: a record from another gateway's log
does not pass as ours, overlapping spans (two writers racing) still prove, v1 exports still
verify, and malformed proof lines are refused precisely."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.chain import link
from egress.audit.checkpoint import Signer
from egress.audit.export import EXPORT_FORMAT_V1, ExportError, ExportFilter, export_jsonl, read_export, verify_export
from egress.audit.merkle import leaf_hash, merkle_root
from egress.audit.verify import verify_store
from egress.store.base import SqlStore
from egress.store.sqlite import SqliteStore
from tests.unit.audit import test_chain
from tests.unit.audit.test_chain import entry
from tests.unit.audit.test_checkpoints import KEY, PUBLIC

store = test_chain.store  # the fixture: SQLite, and PostgreSQL (marker postgres)

ODD = ExportFilter(kind="odd")


def odd_entry(i: int, **extra):
    return entry(i, findings={"kinds": {"odd": 1} if i % 2 else {}}, **extra)


def write_odd(target: SqlStore, n: int, key: Ed25519PrivateKey = KEY, **extra) -> None:
    """n records, v2 checkpoints every 10 records (at 10, 20, …), signed by `key`."""
    signer = Signer(key)
    for start in range(1, n + 1, 10):
        target.append_audit([odd_entry(i, **extra) for i in range(start, min(start + 10, n + 1))], link)
        head = target.audit_head()
        pairs = list(target.iter_audit_hashes(start, head[0]))
        root = merkle_root([leaf_hash(s, h) for s, h in pairs])
        target.append_checkpoint(signer.sign(head[0], head[1], time.time(), start, root))


def lines_of(target: SqlStore, selector: ExportFilter = ODD) -> list[bytes]:
    return b"".join(export_jsonl(target.iter_audit(), target.list_checkpoints(), selector, 0.0)).splitlines()


def verified(lines: list[bytes], public=PUBLIC):
    return verify_export(read_export(lines), public)


def test_a_record_from_another_gateways_log_is_named(store, tmp_path):
    write_odd(store, 30)
    other_key = Ed25519PrivateKey.generate()
    theirs = SqliteStore(tmp_path / "theirs.db")
    theirs.migrate()
    write_odd(theirs, 30, key=other_key, jurisdiction="CN")
    ours_lines, their_lines = lines_of(store), lines_of(theirs)
    assert verified(ours_lines).ok and verified(their_lines, other_key.public_key()).ok

    def swap(lines: list[bytes], pick) -> list[bytes]:
        """Our lines with those `pick` selects replaced by the other log's line at the same place."""
        theirs_by = {pick(json.loads(x)): x for x in their_lines if pick(json.loads(x))}
        return [theirs_by.get(pick(json.loads(x)), x) for x in lines]

    def record_or_proof_of_15(doc: dict) -> str | None:
        if doc.get("seq") == 15 and "record" in doc:
            return "record"
        return "proof" if doc.get("proof", {}).get("seq") == 15 else None

    spliced = swap(ours_lines, record_or_proof_of_15)
    assert b'"jurisdiction":"CN"' in b"".join(spliced)
    report = verified(spliced)
    assert report.chain.ok and report.checkpoint_break is None  # self-consistent, alone
    brk = report.membership.first_break
    assert brk.seq == 15 and brk.request_id == "req_15"
    assert "does not lead to the signed root of the checkpoint at record 20" in brk.reason

    # With their checkpoint too: it is not signed by our key, and the first record relying on it
    # (11, ours, whose proof is fine but leads there) is named.
    def record_proof_or_checkpoint(doc: dict) -> str | None:
        return record_or_proof_of_15(doc) or ("cp" if doc.get("checkpoint", {}).get("seq") == 20 else None)

    report = verified(swap(ours_lines, record_proof_or_checkpoint))
    assert "not by the given public key" in report.checkpoint_break.reason
    assert report.membership.first_break.seq == 11
    assert "leads to the checkpoint at record 20, which does not verify" in report.membership.first_break.reason
    theirs.close()


def test_overlapping_spans_of_racing_writers_prove_and_verify(store):
    """Two writers read the same last checkpoint and sign spans 1..10 and 1..15: both are valid;
    a record is proven against the first span that holds it."""
    store.append_audit([odd_entry(i) for i in range(1, 31)], link)
    rows = {r.seq: r.hash for r in store.iter_audit()}
    signer = Signer(KEY)
    for first, last in ((1, 10), (1, 15), (16, 30)):
        root = merkle_root([leaf_hash(s, rows[s]) for s in range(first, last + 1)])
        store.append_checkpoint(signer.sign(last, rows[last], time.time(), first, root))
    docs = [json.loads(x) for x in lines_of(store)]
    assert {d["proof"]["seq"]: d["proof"]["checkpoint_seq"] for d in docs if "proof" in d} == {
        s: 10 if s <= 10 else 15 if s <= 15 else 30 for s in range(1, 31, 2)
    }
    report = verified(lines_of(store))
    assert report.ok and report.membership.proven == 15
    assert verified(lines_of(store, ExportFilter())).ok  # the complete export recomputes all three roots
    from_db = verify_store(store, PUBLIC)
    assert from_db.ok and from_db.checkpoints_verified == 3


def test_a_v1_export_is_still_read_and_verified(store):
    """What the previous egress wrote: format v1, v1 checkpoints (no span), no proof lines."""
    store.append_audit([odd_entry(i) for i in range(1, 21)], link)
    hashes = {r.seq: r.hash for r in store.iter_audit()}
    for seq in (10, 20):
        store.append_checkpoint(Signer(KEY).sign(seq, hashes[seq], 1.0))
    v1 = []
    for line in lines_of(store):
        doc = json.loads(line)
        if "export" in doc:
            doc["export"]["format"] = EXPORT_FORMAT_V1
        for gone in ("first", "root"):
            doc.get("checkpoint", {}).pop(gone, None)
        v1.append(json.dumps(doc).encode())
    assert not any(b'"proof"' in x for x in v1)
    export = read_export(v1)
    assert export.format == EXPORT_FORMAT_V1 and len(export.records) == 10 and len(export.checkpoints) == 2
    report = verify_export(export, PUBLIC)
    assert report.ok and report.membership is None and report.covered_seq == 20  # v1: no membership claim
    with pytest.raises(ExportError, match=f"line {len(v1) + 1}: not an egress audit export line"):
        read_export([*v1, b'{"proof": {"seq": 5}}'])  # v1 has no proof lines


def test_malformed_or_stray_proofs_are_refused(store):
    write_odd(store, 20)
    lines = lines_of(store)
    at = next(i for i, x in enumerate(lines) if b'"proof"' in x)
    doc = json.loads(lines[at])
    bad = dict(doc, proof=dict(doc["proof"], index=str(doc["proof"]["index"])))
    with pytest.raises(ExportError, match=f"line {at + 1}: .*integers"):
        read_export([*lines[:at], json.dumps(bad).encode(), *lines[at + 1 :]])

    report = verified([*lines[:at], lines[at], *lines[at:]])
    assert report.membership.first_break.reason == "two inclusion proofs for one record"
    stray = dict(doc, proof=dict(doc["proof"], seq=2))  # record 2 is even: not exported
    report = verified([*lines, json.dumps(stray).encode()])
    assert (
        report.membership.first_break.seq == 2 and "which is not in the export" in report.membership.first_break.reason
    )


def test_records_after_the_last_checkpoint_are_not_yet_covered(store):
    write_odd(store, 20)
    store.append_audit([odd_entry(i) for i in range(21, 26)], link)  # no checkpoint yet
    report = verified(lines_of(store))
    assert report.ok
    assert (report.membership.proven, report.membership.not_yet_covered) == (10, 3)
    # Leaving out every checkpoint and proof does not make proven records pass as more than that.
    bare = [x for x in lines_of(store) if b'"proof"' not in x and b'"checkpoint"' not in x]
    report = verified(bare)
    assert report.ok and (report.membership.proven, report.membership.not_yet_covered) == (0, 13)
    # A checkpoint kept but a proof removed inside its span fails.
    some = [x for x in lines_of(store) if b'"proof":{"seq":5,' not in x.replace(b" ", b"")]
    brk = verified(some).membership.first_break
    assert brk.seq == 5 and "no inclusion proof" in brk.reason


def test_a_checkpoint_whose_span_misses_the_record_is_refused(store):
    write_odd(store, 20)
    lines = lines_of(store)
    docs = [json.loads(x) for x in lines]
    cps = {d["checkpoint"]["seq"]: d["checkpoint"] for d in docs if "checkpoint" in d}
    assert {k: (v["first"], v["root"] is not None) for k, v in cps.items()} == {10: (1, True), 20: (11, True)}
    moved = [
        json.dumps(dict(d, proof=dict(d["proof"], checkpoint_seq=20))).encode()
        if d.get("proof", {}).get("seq") == 3
        else line
        for d, line in zip(docs, lines, strict=True)
    ]
    brk = verified(moved).membership.first_break
    assert brk.seq == 3 and "spans records 11..20, not record 3" in brk.reason
