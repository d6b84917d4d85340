"""Seeded audit traffic for the report's tests: PII masked to the US, PII in clear to the EU, a
secret blocked, proprietary code to a self-hosted endpoint; written through the real audit writer
(hash chain and signed checkpoints)."""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.checkpoint import Signer
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.core.audit_record import AuditRecord, Decision, Findings, Masked, MaskedValue
from egress.core.records import AuditEntry
from egress.report.context import EndpointFacts, ReportContext
from egress.store.sqlite import SqliteStore

T0 = 1_780_000_000.0  # 2026-05-28


def record(
    i: int, team: str, endpoint: str | None, jurisdiction: str | None, kind: str, rule: str, **kw
) -> AuditRecord:
    masked = kw.pop("masked", False)
    outcome = kw.pop("outcome", "forwarded")
    return AuditRecord(
        v=3,
        request_id=f"req_{i}",
        ts=T0 + i,
        user=f"{team}-dev",
        team=team,
        api="anthropic.messages",
        endpoint=endpoint,
        jurisdiction=jurisdiction,
        outcome=outcome,
        status=200 if outcome == "forwarded" else 403,
        credential_plan="api",
        findings=Findings(kinds={kind: 1}, rules={rule: 1}, total=1),
        masked=Masked(count=1, rewritten=True, values=(MaskedValue(hash="h", kind=kind, occurrences=1, rule=rule),))
        if masked
        else Masked(),
        decision=Decision(
            id=f"d{i}",
            action=kw.pop("action", "allow"),
            endpoints=(endpoint,) if endpoint else (),
            reasons=tuple(kw.pop("reasons", ())),
            policy_revision=kw.pop("revision", "rev-1"),
        ),
        **kw,
    )


def scenario() -> list[AuditRecord]:
    return [
        record(1, "web", "anthropic", "US", "pii", "pii-email", masked=True, action="mask", reasons=["masking pii"]),
        record(2, "web", "mistral", "FR", "pii", "pii-email"),
        record(
            3,
            "ops",
            None,
            None,
            "secret",
            "aws-access-key",
            outcome="refused",
            action="block",
            reasons=[
                "anthropic: personal data may not go to US",
                "no candidate endpoint is compliant for this request",
            ],
        ),
        record(
            4,
            "core",
            "vllm",
            "self",
            "proprietary_code",
            "indexed-repo",
            reasons=["anthropic: proprietary code goes to self-hosted endpoints only"],
            revision="rev-2",
        ),
    ]


def entry(rec: AuditRecord) -> AuditEntry:
    return AuditEntry(
        request_id=rec.request_id or "",
        ts=float(rec.ts or 0),
        user=rec.user,
        team=rec.team,
        api=rec.api,
        endpoint=rec.endpoint,
        jurisdiction=rec.jurisdiction,
        outcome=rec.outcome or "",
        status=rec.status,
        canonical=rec.canonical(),
    )


def write(path: Path, key: Ed25519PrivateKey, records: list[AuditRecord]) -> SqliteStore:
    store = SqliteStore(path)
    store.migrate()
    writer = AuditWriter(store, AuditSettings(flush_interval_ms=1, checkpoint_every=2), Signer(key))
    writer.start()
    for rec in records:
        writer.submit(entry(rec))
    writer.close()
    return store


def context() -> ReportContext:
    def facts(name: str, operator: str, law: str, jurisdiction: str, **kw) -> EndpointFacts:
        return EndpointFacts(
            name=name,
            operator=operator,
            operator_jurisdiction=law,
            jurisdiction=jurisdiction,
            region=jurisdiction.lower(),
            catalog_id=name,
            dpa=kw.get("dpa", True),
            retention_days=kw.get("retention", 30),
            trains_on_api_data=False,
            zero_data_retention=False,
            government_access=kw.get("gov", ()),
            transfer_safeguard=kw.get("safeguard"),
            source=None,
        )

    endpoints = {
        "anthropic": facts(
            "anthropic", "Anthropic, PBC", "US", "US", gov=("US CLOUD Act (18 U.S.C. 2713)",), safeguard="SCCs"
        ),
        "mistral": facts("mistral", "Mistral AI", "FR", "FR", gov=("French law",)),
        "vllm": facts("vllm", "self", "self", "self", retention=0, gov=("none: self-hosted",)),
    }
    return ReportContext(endpoints=endpoints, home_jurisdictions=("EU",), measures=("masking",))
