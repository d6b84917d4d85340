"""Session recording and replay: what one request sent upstream and what came back.

A policy obligation (`record_payload`, off by default) asks for it. The pipeline captures the
exact bytes it sent upstream (masked, translated if so) and the answer as the upstream sent it
(before restoration, so still masked); both are sealed (AES-256-GCM, `recording_keys`) off the
event loop and kept for the retention period. The audit record of the request holds both
digests (`upstream_body_sha256`, `response_sha256`), so a replay proves the payloads are the
ones the chain vouches for, and deleting payloads at the end of retention leaves the chain whole.

Invariants:
  * recording happens after masking: a recorded payload holds placeholders, never a value the
    policy masked; the metadata holds kinds and counts, never a value or a placeholder;
  * nothing reaches storage in clear: payloads are sealed to their request id and direction.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, replace
from typing import Protocol

import orjson

from egress.core.audit_record import parse_record
from egress.core.exchange import Exchange
from egress.core.obligations import RECORD_PAYLOAD
from egress.core.records import StoredAudit, StoredRecording
from egress.recording.keys import Direction, RecordingKeys, SealError
from egress.wire.apis import upstream_spec


class RecordingStore(Protocol):
    """Where recordings live (a `Store`)."""

    def put_recordings(self, recordings: list[StoredRecording]) -> None: ...

    def get_recording(self, request_id: str) -> StoredRecording | None: ...

    def purge_recordings(self, now: float) -> int: ...

    def audit_by_request(self, request_id: str) -> StoredAudit | None: ...


@dataclass(frozen=True, slots=True)
class RecordingMeta:
    """What is known of a recording besides its payloads: kinds and counts, never a value."""

    api: str | None  # the wire API of the received bytes (the upstream's: Chat when translated)
    client_api: str | None
    endpoint: str | None
    upstream_path: str | None
    status: int | None
    stream: bool
    masked_kinds: dict[str, int]
    sent_bytes: int
    received_bytes: int
    sent_truncated: bool = False
    received_truncated: bool = False

    @classmethod
    def parse(cls, raw: bytes) -> RecordingMeta:
        doc = orjson.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("recording metadata is not a JSON object")
        known = {name: doc[name] for name in cls.__dataclass_fields__ if name in doc}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class PendingRecording:
    """What is to be sealed: built on the recording writer's thread from the finished exchange."""

    request_id: str
    recorded_at: float
    sent: bytes
    received: list[bytes]
    meta: RecordingMeta


def wants_recording(x: Exchange) -> bool:
    return x.decision is not None and RECORD_PAYLOAD in x.decision.obligations


def pending_recording(x: Exchange) -> PendingRecording:
    """The recording of an exchange whose answer was captured (`x.capture`)."""
    assert x.capture is not None
    upstream = upstream_spec(x.api, x.translated_from is not None)
    kinds: Counter[str] = Counter()
    if x.masked is not None:
        for value in x.masked.values:
            kinds[str(value.kind)] += value.occurrences  # str: JSON keys (orjson refuses enums)
    sent = x.upstream_body or b""
    return PendingRecording(
        request_id=x.request_id,
        recorded_at=x.started_at,
        sent=sent,
        received=x.capture.chunks,
        meta=RecordingMeta(
            api=upstream.api.value,
            client_api=x.api.value,
            endpoint=x.endpoint_name,
            upstream_path=upstream.upstream_path,
            status=x.upstream_status,
            stream=x.capture.stream,
            masked_kinds=dict(kinds),
            sent_bytes=len(sent),
            received_bytes=x.capture.received,
            received_truncated=x.capture.truncated,
        ),
    )


def seal_recording(keys: RecordingKeys, pending: PendingRecording, max_bytes: int, expires_at: float) -> StoredRecording:
    """Seal both payloads (the sent body cut to `max_bytes`, noted in the metadata)."""
    sent = pending.sent
    meta = pending.meta
    if len(sent) > max_bytes:
        sent = sent[:max_bytes]
        meta = replace(meta, sent_truncated=True)
    received = b"".join(pending.received)
    rid = pending.request_id
    return StoredRecording(
        request_id=rid,
        recorded_at=pending.recorded_at,
        expires_at=expires_at,
        key_id=keys.current,
        sent=keys.seal(rid, Direction.SENT, sent),
        received=keys.seal(rid, Direction.RECEIVED, received),
        metadata=orjson.dumps(meta),
    )


@dataclass(frozen=True)
class Replay:
    """A recorded request, opened. `expired`: retention deleted the payloads (`sent` and
    `received` are then empty). `digests_match`: the payloads are exactly the ones whose digests
    the audit chain holds (a payload cut at `recording.max_bytes` cannot be compared: see
    `sent_truncated`/`received_truncated`)."""

    request_id: str
    recorded_at: float
    endpoint: str | None
    upstream_path: str | None
    status: int | None
    stream: bool
    sent: bytes
    received: bytes
    masked_kinds: dict[str, int]
    expired: bool
    digests_match: bool
    api: str | None = None  # the wire API of `received` (see `wire.answer_text`)
    sent_truncated: bool = False
    received_truncated: bool = False
    mismatched: tuple[str, ...] = ()  # "sent", "received": which payloads differ from the chain


class Recordings:
    """Replay and retention over a store; synchronous (call from a thread, never on the loop).

    `replay` raises `recording_keys.SealError` when a payload does not open: it was altered, moved
    from another record, or sealed with a key the key file no longer holds."""

    def __init__(self, store: RecordingStore, keys: RecordingKeys) -> None:
        self.store = store
        self.keys = keys

    def replay(self, request_id: str) -> Replay | None:
        """None when the request was not recorded."""
        row = self.store.get_recording(request_id)
        if row is None:
            return None
        try:
            meta = RecordingMeta.parse(row.metadata)
        except (ValueError, TypeError):
            raise SealError("the recording's metadata is unreadable: it was altered") from None
        expired = row.sent is None and row.received is None
        sent = b"" if row.sent is None else self.keys.open(request_id, Direction.SENT, row.sent)
        received = b"" if row.received is None else self.keys.open(request_id, Direction.RECEIVED, row.received)
        mismatched = () if expired else self._mismatched(request_id, sent, received, meta)
        return Replay(
            request_id=request_id,
            recorded_at=row.recorded_at,
            endpoint=meta.endpoint,
            upstream_path=meta.upstream_path,
            status=meta.status,
            stream=meta.stream,
            sent=sent,
            received=received,
            masked_kinds=dict(meta.masked_kinds),
            expired=expired,
            digests_match=not expired and not mismatched,
            api=meta.api,
            sent_truncated=meta.sent_truncated,
            received_truncated=meta.received_truncated,
            mismatched=mismatched,
        )

    def _mismatched(self, request_id: str, sent: bytes, received: bytes, meta: RecordingMeta) -> tuple[str, ...]:
        stored = self.store.audit_by_request(request_id)
        record = parse_record(stored.entry.canonical) if stored is not None else None
        if record is None or not record.recorded:
            return ("sent", "received")  # no audit record vouches for this recording
        out = []
        if not meta.sent_truncated and record.upstream_body_sha256 != _sha256(sent):
            out.append("sent")
        if record.response_sha256 != _sha256(received):
            out.append("received")
        return tuple(out)

    def purge_expired(self, now: float) -> int:
        """Delete the payloads whose retention ended; returns how many recordings lost theirs."""
        return self.store.purge_recordings(now)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
