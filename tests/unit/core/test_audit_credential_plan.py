"""The audit records the plan of the client's own credential (egress.identity.plans); a request
that sent none keeps the bytes a record always had (older chains verify, byte for byte)."""

from __future__ import annotations

import orjson

from egress.audit.record import build_entry
from egress.core.audit_record import parse_record
from egress.core.credentials import CredentialClass, Plan
from egress.core.exchange import Api, Exchange, Outcome, ParsedRequest, Prompt


def exchange(credential: CredentialClass | None) -> Exchange:
    x = Exchange(
        request_id="req-1",
        method="POST",
        path="/v1/messages",
        query="",
        headers=[],
        api=Api.ANTHROPIC_MESSAGES,
        body=b"{}",
        parsed=ParsedRequest(api=Api.ANTHROPIC_MESSAGES, model="claude-x", stream=True, document={}, prompt=Prompt(())),
    )
    x.credential = credential
    x.outcome = Outcome.REFUSED
    x.status = 403
    return x


def test_the_plan_is_recorded_and_reads_back() -> None:
    record = build_entry(exchange(CredentialClass(Plan.CONSUMER, "anthropic_oauth", "anthropic"))).record
    canonical = record.canonical()
    doc = orjson.loads(canonical)
    assert doc["credential_plan"] == "consumer"
    assert list(doc) == sorted(doc)
    assert "anthropic_oauth" not in canonical.decode()  # the plan, not the credential's type or value
    back = parse_record(canonical)
    assert back.credential_plan == "consumer" and back.canonical() == canonical


def test_no_credential_no_key() -> None:
    with_none = build_entry(exchange(None)).record.canonical()
    assert b"credential_plan" not in with_none
    assert parse_record(with_none).canonical() == with_none
