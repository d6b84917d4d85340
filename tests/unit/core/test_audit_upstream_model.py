"""Model mapping in the audit: a record names the model id the endpoint was asked for beside the
client's, and only when they differ; a record without mapping keeps the bytes it always had."""

from __future__ import annotations

import orjson

from egress.audit.record import build_egress, build_entry
from egress.core.audit_record import parse_record
from egress.core.exchange import Api, Exchange, Outcome, ParsedRequest, Prompt


def exchange(upstream_model: str | None) -> Exchange:
    x = Exchange(
        request_id="req-1",
        method="POST",
        path="/v1/messages",
        query="",
        headers=[],
        api=Api.ANTHROPIC_MESSAGES,
        body=b"{}",
        parsed=ParsedRequest(
            api=Api.ANTHROPIC_MESSAGES, model="claude-sonnet-4-5", stream=True, document={}, prompt=Prompt(())
        ),
    )
    x.endpoint_name = "bedrock-eu"
    x.endpoint_jurisdiction = "EU"
    x.endpoint_region = "eu-central-1"
    x.upstream_model = upstream_model
    x.outcome = Outcome.FORWARDED
    x.status = 200
    return x


def test_a_mapped_request_records_both_names() -> None:
    record = build_entry(exchange("eu.anthropic.claude-sonnet-4-5-20250929-v1:0")).record
    doc = orjson.loads(record.canonical())
    assert doc["model"] == "claude-sonnet-4-5"
    assert doc["upstream_model"] == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert list(doc) == sorted(doc)  # still canonical: sorted keys
    back = parse_record(record.canonical())
    assert back.upstream_model == "eu.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert back.canonical() == record.canonical()


def test_the_write_ahead_record_names_the_id_about_to_leave() -> None:
    record = build_egress(exchange("anthropic.claude-x"), b"{}").record
    doc = orjson.loads(record.canonical())
    assert (doc["model"], doc["upstream_model"]) == ("claude-sonnet-4-5", "anthropic.claude-x")


def test_without_mapping_the_key_is_absent_and_the_bytes_unchanged() -> None:
    for build in (lambda x: build_entry(x).record, lambda x: build_egress(x, b"{}").record):
        record = build(exchange(None))
        raw = record.canonical()
        assert b"upstream_model" not in raw
        assert parse_record(raw).upstream_model is None
        assert parse_record(raw).canonical() == raw
