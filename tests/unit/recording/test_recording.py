"""Recorded payloads: sealing (AES-GCM bound to request, direction and key id), the key file and
its rotation, the recording writer on real stores (SQLite, PostgreSQL), replay checked against
the audit chain's digests, retention, and the bounded capture of an answer."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egress.audit.chain import link, verify
from egress.audit.record import AuditDraft, finalize
from egress.config import load_config
from egress.core.capture import Capture
from egress.core.exchange import Api, Exchange
from egress.recording.keys import (
    Direction,
    RecordingKeyError,
    RecordingKeys,
    SealError,
    key_id_of,
    load_or_create_recording_keys,
    load_recording_keys,
    prune_recording_keys,
    rotate_recording_key,
)
from egress.recording.recordings import PendingRecording, RecordingMeta, Recordings
from egress.recording.settings import RecordingSettings
from egress.recording.writer import RecordingWriter
from egress.store.base import SqlStore
from tests.unit.audit import test_chain
from tests.unit.audit.test_chain import execute

store = test_chain.store  # the fixture: SQLite, and PostgreSQL (marker postgres)

KEYS = RecordingKeys.of(os.urandom(32))


# --- sealing -----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=4096), request_id=st.text(min_size=1, max_size=40))
def test_any_payload_opens_to_itself_and_only_as_sealed(payload, request_id):
    sealed = KEYS.seal(request_id, Direction.RECEIVED, payload)
    assert KEYS.open(request_id, Direction.RECEIVED, sealed) == payload
    if len(payload) >= 16:
        assert payload not in sealed
    with pytest.raises(SealError):
        KEYS.open(request_id, Direction.SENT, sealed)
    with pytest.raises(SealError):
        KEYS.open(request_id + "x", Direction.RECEIVED, sealed)


def test_two_seals_of_one_payload_differ():
    one, two = (KEYS.seal("req_1", Direction.SENT, b"same body") for _ in range(2))
    assert one != two  # a fresh nonce every time


@pytest.mark.parametrize("position", [0, 1, 5, 30, -1])
def test_any_altered_byte_refuses_to_open(position):
    sealed = bytearray(KEYS.seal("req_1", Direction.SENT, b'{"model": "m", "messages": []}'))
    sealed[position] ^= 0x01
    with pytest.raises(SealError):
        KEYS.open("req_1", Direction.SENT, bytes(sealed))


def test_a_payload_relabelled_with_another_known_key_id_refuses_to_open():
    other = os.urandom(32)
    both = RecordingKeys.of(other, KEYS.keys[KEYS.current])
    sealed = both.seal("req_1", Direction.SENT, b"body")
    relabelled = sealed.replace(both.current.encode(), key_id_of(other).encode())
    with pytest.raises(SealError):
        both.open("req_1", Direction.SENT, relabelled)


def test_a_payload_whose_key_is_gone_names_the_key():
    sealed = RecordingKeys.of(os.urandom(32)).seal("req_1", Direction.SENT, b"body")
    with pytest.raises(SealError, match="no longer holds"):
        KEYS.open("req_1", Direction.SENT, sealed)


@pytest.mark.parametrize("junk", [b"", b"\x02abc", b"\x01\x05rk_1", b"\x01\x03rk_" + b"\0" * 27])
def test_what_is_not_a_sealed_payload_is_refused(junk):
    with pytest.raises(SealError):
        KEYS.open("req_1", Direction.SENT, junk)


# --- the key file and its rotation -----------------------------------------------------------------


def test_key_file_is_created_once_owner_only(tmp_path):
    path = tmp_path / "data" / "recording.key"
    first = load_or_create_recording_keys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_recording_keys(path) == first
    assert len(first.keys) == 1 and first.current.startswith("rk_")


def test_workers_starting_together_agree_on_one_key(tmp_path):
    path = tmp_path / "recording.key"
    barrier = threading.Barrier(8)
    found: list[RecordingKeys] = []

    def start() -> None:
        barrier.wait()
        found.append(load_or_create_recording_keys(path))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(found) == 8 and len({k.current for k in found}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["recording.key"]  # no temporary file left


def test_rotation_seals_with_the_new_key_and_still_opens_the_old_payloads(tmp_path):
    path = tmp_path / "recording.key"
    before = load_or_create_recording_keys(path)
    old = before.seal("req_1", Direction.SENT, b"old body")
    after = rotate_recording_key(path)
    assert after.current != before.current and set(after.keys) == {before.current, after.current}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_recording_keys(path) == after
    assert after.open("req_1", Direction.SENT, old) == b"old body"
    new = after.seal("req_2", Direction.SENT, b"new body")
    assert new[2 : 2 + len(after.current)] == after.current.encode()
    with pytest.raises(SealError):
        before.open("req_2", Direction.SENT, new)

    # Pruning keeps a key some stored payload needs, and always the current one.
    assert prune_recording_keys(path, in_use={before.current}) == []
    assert prune_recording_keys(path, in_use=set()) == [before.current]
    pruned = load_recording_keys(path)
    assert set(pruned.keys) == {after.current} and pruned.current == after.current
    with pytest.raises(SealError, match="no longer holds"):
        pruned.open("req_1", Direction.SENT, old)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "holds no key"),
        ("rk_0 00\n", ":1: expected"),
        ("# c\nrk_0000000000000000 " + "ab" * 32 + "\n", ":2: key id 'rk_0000000000000000' does not belong"),
        ("only-one-field\n", ":1: expected"),
    ],
)
def test_a_malformed_key_file_is_named_with_its_line(tmp_path, text, message):
    path = tmp_path / "recording.key"
    path.write_text(text)
    with pytest.raises(RecordingKeyError, match=message):
        load_recording_keys(path)


# --- capture ---------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(chunks=st.lists(st.binary(max_size=64), max_size=20), limit=st.integers(min_value=0, max_value=300))
def test_capture_keeps_exactly_the_first_limit_bytes(chunks, limit):
    capture = Capture(limit)
    for chunk in chunks:
        capture.add(chunk)
    whole = b"".join(chunks)
    assert b"".join(capture.chunks) == whole[:limit]
    assert capture.kept == min(limit, len(whole)) and capture.received == len(whole)
    assert capture.truncated == (len(whole) > limit)


# --- on a real store: writer, replay, retention --------------------------------------------------

SENT = b'{"model":"claude-x","messages":[{"role":"user","content":"use EGX_AWS_ACCESS_KEY_ID_abcdefghijklm"}]}'
RECEIVED = [b"event: message_start\ndata: {}\n\n", b"event: content_block_delta\ndata: {}\n\n"]


def pending(i: int, sent: bytes = SENT, received: list[bytes] | None = None) -> PendingRecording:
    received = RECEIVED if received is None else received
    return PendingRecording(
        request_id=f"req_{i}",
        recorded_at=1000.0 + i,
        sent=sent,
        received=received,
        meta=RecordingMeta(
            api="anthropic.messages",
            client_api="anthropic.messages",
            endpoint="sim-anthropic",
            upstream_path="/v1/messages",
            status=200,
            stream=True,
            masked_kinds={"secret": 1},
            sent_bytes=len(sent),
            received_bytes=sum(map(len, received)),
        ),
    )


def audit_for(store: SqlStore, p: PendingRecording) -> None:
    """The audit record the gateway writes for a recorded request (digests on the writer side)."""
    record = {
        "request_id": p.request_id,
        "ts": p.recorded_at,
        "user": "alice",
        "team": "t",
        "api": "anthropic.messages",
        "endpoint": "sim-anthropic",
        "jurisdiction": "US",
        "outcome": "forwarded",
        "status": 200,
        "upstream_body_sha256": None,
        "recorded": True,
        "response_sha256": None,
    }
    store.append_audit([finalize(AuditDraft(record, p.sent, p.received))], link)


def record_all(store: SqlStore, items: list[PendingRecording], **overrides) -> RecordingWriter:
    writer = RecordingWriter(store, KEYS, RecordingSettings(**overrides), flush_interval_s=0.001)
    writer.start()
    for item in items:
        audit_for(store, item)
        writer.submit(item)
    writer.close()
    assert writer.written == len(items)
    return writer


def test_the_audit_record_holds_the_digests_of_both_payloads():
    entry = finalize(AuditDraft({"request_id": "r", "ts": 1.0, "user": None, "team": None, "api": None,
                                 "endpoint": None, "jurisdiction": None, "outcome": "forwarded", "status": 200},
                                SENT, RECEIVED))
    record = orjson.loads(entry.canonical)
    assert record["upstream_body_sha256"] == hashlib.sha256(SENT).hexdigest()
    assert record["response_sha256"] == hashlib.sha256(b"".join(RECEIVED)).hexdigest()


def test_recorded_payloads_replay_verified_and_sealed_at_rest(store):
    record_all(store, [pending(1), pending(2)])
    replay = Recordings(store, KEYS).replay("req_1")
    assert replay is not None and replay.digests_match and not replay.expired
    assert replay.sent == SENT and replay.received == b"".join(RECEIVED)
    assert replay.masked_kinds == {"secret": 1} and replay.stream and replay.status == 200
    assert replay.endpoint == "sim-anthropic" and replay.upstream_path == "/v1/messages"
    stored = store.get_recording("req_1")
    assert stored is not None and stored.key_id == KEYS.current
    assert SENT not in stored.sent and b"EGX_" not in stored.sent and b"message_start" not in stored.received
    assert Recordings(store, KEYS).replay("req_404") is None


def test_swapped_ciphertexts_refuse_to_open(store):
    record_all(store, [pending(1), pending(2, sent=b'{"other": 1}')])
    a, b = store.get_recording("req_1"), store.get_recording("req_2")
    execute(store, "UPDATE recordings SET sent = ? WHERE request_id = ?", (b.sent, "req_1"))
    execute(store, "UPDATE recordings SET sent = ? WHERE request_id = ?", (a.sent, "req_2"))
    for rid in ("req_1", "req_2"):
        with pytest.raises(SealError):
            Recordings(store, KEYS).replay(rid)
    # Sent and received of one record swapped: refused as well (the direction is bound).
    execute(store, "UPDATE recordings SET sent = received, received = sent WHERE request_id = ?", ("req_1",))
    with pytest.raises(SealError):
        Recordings(store, KEYS).replay("req_1")


def test_an_edited_ciphertext_refuses_to_open(store):
    record_all(store, [pending(1)])
    sealed = bytearray(store.get_recording("req_1").received)
    sealed[-20] ^= 0x40
    execute(store, "UPDATE recordings SET received = ? WHERE request_id = ?", (bytes(sealed), "req_1"))
    with pytest.raises(SealError, match="received payload does not open"):
        Recordings(store, KEYS).replay("req_1")


def test_a_payload_resealed_by_a_key_holder_no_longer_matches_the_chain(store):
    record_all(store, [pending(1)])
    forged = KEYS.seal("req_1", Direction.SENT, SENT.replace(b"claude-x", b"claude-y"))
    execute(store, "UPDATE recordings SET sent = ? WHERE request_id = ?", (forged, "req_1"))
    replay = Recordings(store, KEYS).replay("req_1")
    assert replay is not None and not replay.digests_match and replay.mismatched == ("sent",)


def test_retention_deletes_payloads_and_the_chain_still_verifies(store):
    now = time.time()
    record_all(store, [pending(1), pending(2)], retention_days=1 / 24)
    execute(store, "UPDATE recordings SET expires_at = ? WHERE request_id = ?", (now - 1, "req_1"))
    assert Recordings(store, KEYS).purge_expired(now) == 1
    assert Recordings(store, KEYS).purge_expired(now) == 0
    expired = Recordings(store, KEYS).replay("req_1")
    assert expired is not None and expired.expired and not expired.digests_match
    assert expired.sent == b"" and expired.received == b"" and expired.masked_kinds == {"secret": 1}
    assert store.get_recording("req_1").sent is None
    kept = Recordings(store, KEYS).replay("req_2")
    assert kept is not None and kept.digests_match
    assert verify(store.iter_audit()).ok and verify(store.iter_audit()).checked == 2
    assert store.recording_key_ids() == {KEYS.current}


def test_the_writer_purges_expired_payloads_when_it_starts(store):
    record_all(store, [pending(1)])
    execute(store, "UPDATE recordings SET expires_at = 0 WHERE request_id = ?", ("req_1",))
    writer = RecordingWriter(store, KEYS, RecordingSettings())
    writer.start()
    deadline = time.monotonic() + 5
    while writer.purged == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    writer.close()
    assert writer.purged == 1 and store.get_recording("req_1").sent is None
    assert store.recording_key_ids() == set()


def test_payloads_are_cut_at_max_bytes_and_the_cut_is_noted(store):
    big = b"x" * 5000
    record_all(store, [pending(1, sent=big)], max_bytes=1024)
    replay = Recordings(store, KEYS).replay("req_1")
    assert replay is not None and replay.sent == big[:1024] and replay.sent_truncated
    # The chain's digest is of the whole body: the cut body is not compared, the answer is.
    assert replay.digests_match and replay.received == b"".join(RECEIVED)


def test_a_recording_without_an_audit_record_does_not_verify(store):
    writer = RecordingWriter(store, KEYS, RecordingSettings(), flush_interval_s=0.001)
    writer.start()
    writer.submit(pending(7))
    writer.close()
    replay = Recordings(store, KEYS).replay("req_7")
    assert replay is not None and not replay.digests_match


def test_unknown_metadata_keys_are_ignored_and_missing_ones_refused():
    meta = orjson.loads(orjson.dumps(pending(1).meta))
    assert RecordingMeta.parse(orjson.dumps({**meta, "future": 1})) == pending(1).meta
    with pytest.raises(TypeError):
        RecordingMeta.parse(orjson.dumps({"api": "x"}))


def test_key_file_path_default_is_in_the_data_dir(tmp_path: Path):
    config = load_config(None, env={"EGRESS_DATA_DIR": str(tmp_path), "EGRESS_CONFIG": ""})
    assert config.recording_key_file == tmp_path / "recording.key"
    assert config.recording.retention_days == 30 and config.recording.max_bytes == 8 * 1024 * 1024


def test_a_recording_that_cannot_be_built_is_dropped_and_the_writer_goes_on(store):
    writer = RecordingWriter(store, KEYS, RecordingSettings(), flush_interval_s=0.001)
    writer.start()
    writer.submit(
        Exchange(
            request_id="req_bad", method="POST", path="/v1/messages", query="", headers=[], api=Api.ANTHROPIC_MESSAGES
        )
    )
    writer.submit(pending(2))
    writer.close()
    assert writer.dropped == 1 and writer.written == 1
    assert store.get_recording("req_bad") is None and store.get_recording("req_2") is not None


def test_altered_metadata_is_refused(store):
    record_all(store, [pending(1)])
    execute(store, "UPDATE recordings SET metadata = ? WHERE request_id = ?", (b'{"api": 1', "req_1"))
    with pytest.raises(SealError, match="metadata is unreadable"):
        Recordings(store, KEYS).replay("req_1")


class _PurgeFails:
    """A store whose retention purge fails with a message that must never reach the log."""

    def __init__(self, store: SqlStore, failures: int) -> None:
        self._store = store
        self.failures = failures

    def purge_recordings(self, now: float) -> int:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("postgresql://egress:hunter2@db/egress is unreachable")
        return self._store.purge_recordings(now)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def test_a_purge_outage_is_logged_once_by_class_and_its_end_once(store, caplog):
    failing = _PurgeFails(store, failures=3)
    writer = RecordingWriter(failing, KEYS, RecordingSettings())
    caplog.set_level(logging.INFO, logger="egress.recording")
    for _ in range(4):  # three failed purges, then one that works
        writer._purge()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "ConnectionError" in errors[0].getMessage()
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
    assert "hunter2" not in caplog.text and "postgresql://" not in caplog.text
    assert any("recovered" in r.getMessage() for r in caplog.records)
    assert not writer.health.failing
