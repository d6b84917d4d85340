"""Each sink's wire format carries the record verbatim with its seq, hash and prev hash, and
parses back to exactly what the chain holds (property tests over arbitrary records)."""

from __future__ import annotations

import json
import re

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from egress.audit.chain import link
from egress.core.records import GENESIS_HASH, AuditEntry, StoredAudit
from egress.siem.copy import from_document, from_otlp, from_syslog
from egress.siem.http_json import HttpJsonSink
from egress.siem.otlp import OtlpLogsSink
from egress.siem.settings import HttpSink, OtlpSink, SyslogSink
from egress.siem.syslog import SyslogTcpSink
from tests.support.siem_receivers import RFC5424, hec_events

values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)
records = st.dictionaries(st.text(max_size=12), values, max_size=6)


def chain(docs: list[dict]) -> list[StoredAudit]:
    out, prev = [], GENESIS_HASH
    for seq, doc in enumerate(docs, 1):
        doc = {**doc, "ts": 1_800_000_000.0 + seq}
        canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
        entry = AuditEntry(f"req_{seq}", doc["ts"], None, None, None, None, None, "forwarded", 200, canonical)
        digest = link(prev, canonical)
        out.append(StoredAudit(seq, entry, prev, digest))
        prev = digest
    return out


def frames(payload: bytes) -> list[bytes]:
    out = []
    while payload:
        length, _, rest = payload.partition(b" ")
        out.append(rest[: int(length)])
        payload = rest[int(length) :]
    return out


SYSLOG = SyslogTcpSink(SyslogSink(name="s", type="syslog", address="127.0.0.1:6514", hostname="gw 1\u00e9"))


@settings(max_examples=60)
@given(st.lists(records, min_size=1, max_size=5))
def test_syslog_frames_are_octet_counted_rfc5424_and_carry_the_record(docs: list[dict]) -> None:
    batch = chain(docs)
    messages = frames(SYSLOG.encode(batch))  # the counts are bytes: every frame lands exactly
    assert len(messages) == len(batch)
    for stored, message in zip(batch, messages, strict=True):
        head = RFC5424.match(message)
        assert head is not None
        assert head.group(1) == b"110"  # log audit (13) * 8 + informational (6)
        assert head.group(3) == b"gw1"  # printable US-ASCII only
        assert head.group(6) == b"audit"
        assert message.endswith(b"\xef\xbb\xbf" + stored.entry.canonical)
        copy = from_syslog(message)
        assert (copy.seq, copy.hash, copy.prev_hash, copy.canonical) == (
            stored.seq,
            stored.hash,
            stored.prev_hash,
            stored.entry.canonical,
        )


HEC = HttpJsonSink(HttpSink(name="h", type="http", format="splunk_hec", url="http://x", index="audit"))
BULK = HttpJsonSink(HttpSink(name="e", type="http", format="elastic_bulk", url="http://x"))


@settings(max_examples=60)
@given(st.lists(records, min_size=1, max_size=5))
def test_hec_events_carry_the_record(docs: list[dict]) -> None:
    batch = chain(docs)
    events = hec_events(HEC.encode(batch))
    assert len(events) == len(batch)
    for stored, event in zip(batch, events, strict=True):
        assert event["time"] == stored.entry.ts and event["index"] == "audit" and event["source"] == "egress"
        copy = from_document(event["event"])
        assert (copy.seq, copy.hash, copy.prev_hash, copy.canonical) == (
            stored.seq,
            stored.hash,
            stored.prev_hash,
            stored.entry.canonical,
        )


@settings(max_examples=60)
@given(st.lists(records, min_size=1, max_size=5))
def test_elastic_bulk_is_action_and_document_per_record(docs: list[dict]) -> None:
    batch = chain(docs)
    payload = BULK.encode(batch)
    assert payload.endswith(b"\n")  # the bulk API wants the last line terminated
    lines = [json.loads(line) for line in payload.split(b"\n") if line]
    assert len(lines) == 2 * len(batch)
    for stored, action, doc in zip(batch, lines[::2], lines[1::2], strict=True):
        assert action == {"index": {"_index": "egress-audit", "_id": stored.hash}}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", doc.pop("@timestamp"))
        copy = from_document(doc)
        assert copy.canonical == stored.entry.canonical and copy.seq == stored.seq


def test_otlp_log_records_carry_the_record() -> None:
    batch = chain([{"user": "alice", "outcome": "forwarded"}, {"note": "\u00e9\u4e2d"}])
    sink = OtlpLogsSink(OtlpSink(name="o", type="otlp", url="http://x/v1/logs", service_name="gw"))
    request = ExportLogsServiceRequest()
    request.ParseFromString(sink.encode(batch))
    (resource_logs,) = request.resource_logs
    assert resource_logs.resource.attributes[0].value.string_value == "gw"
    (scope_logs,) = resource_logs.scope_logs
    assert scope_logs.scope.name == "egress.audit"
    for stored, lr in zip(batch, scope_logs.log_records, strict=True):
        assert lr.time_unix_nano == int(stored.entry.ts * 1e9) and lr.severity_text == "INFO"
        attributes = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in lr.attributes}
        copy = from_otlp(lr.body.string_value, attributes)
        assert (copy.seq, copy.hash, copy.prev_hash, copy.canonical) == (
            stored.seq,
            stored.hash,
            stored.prev_hash,
            stored.entry.canonical,
        )
