"""Verifying a SIEM's copy: duplicates tolerated, and an edited, missing or conflicting record,
or a copy short of the last checkpoint, named."""

from __future__ import annotations

from dataclasses import replace

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.checkpoint import Signer
from egress.siem.copy import DeliveredRecord, verify_copy
from tests.unit.siem.test_formats import chain

KEY = Ed25519PrivateKey.generate()


def copy_and_checkpoints(n: int = 20):
    stored = chain([{"i": i, "user": "alice"} for i in range(n)])
    copy = [DeliveredRecord(s.seq, s.hash, s.prev_hash, s.entry.canonical) for s in stored]
    signer = Signer(KEY)
    checkpoints = [signer.sign(10, stored[9].hash, 1.0), signer.sign(n, stored[-1].hash, 2.0)]
    return copy, checkpoints


def test_copy_with_duplicates_in_any_order_verifies() -> None:
    copy, checkpoints = copy_and_checkpoints()
    report = verify_copy([*reversed(copy), *copy[5:9]], checkpoints, KEY.public_key())
    assert report.ok and report.chain.checked == 20 and report.covered_seq == 20


def test_edited_record_is_named() -> None:
    copy, checkpoints = copy_and_checkpoints()
    doc = orjson.loads(copy[6].canonical)
    copy[6] = replace(copy[6], canonical=orjson.dumps({**doc, "user": "mallory"}, option=orjson.OPT_SORT_KEYS))
    report = verify_copy(copy, checkpoints, KEY.public_key())
    assert not report.ok and report.breaks[0].seq == 7 and "altered" in report.breaks[0].reason


def test_missing_record_and_short_copy_are_named() -> None:
    copy, checkpoints = copy_and_checkpoints()
    report = verify_copy(copy[:4] + copy[5:], checkpoints, KEY.public_key())
    assert report.breaks[0].seq == 6 and "5..5 are missing" in report.breaks[0].reason
    short = verify_copy(copy[:15], checkpoints, KEY.public_key())
    assert not short.ok and "truncated" in short.breaks[0].reason


def test_two_different_records_at_one_seq_are_a_break() -> None:
    copy, checkpoints = copy_and_checkpoints()
    forged = replace(copy[2], canonical=b'{"i":99}')
    report = verify_copy([*copy, forged], checkpoints, KEY.public_key())
    assert not report.ok and "two different records at sequence number 3" in report.breaks[0].reason


def test_another_key_does_not_verify() -> None:
    copy, checkpoints = copy_and_checkpoints()
    report = verify_copy(copy, checkpoints, Ed25519PrivateKey.generate().public_key())
    assert not report.ok and "signed by key" in report.breaks[0].reason
