"""The compliance pack over a large audit: N synthetic records (default 1,000,000) in a SQLite
store, chained in bulk by the real chain code (`egress.audit.chain.link` through the store's
append_audit, 10,000 records a transaction) with a signed checkpoint every 100,000 records, then
`egress.report.model.build` over the whole period, timed (wall clock and process CPU time).

Usage: .venv/bin/python bench/report_bench.py [N] [DB]
Target (issue 18): a report over 1 million records in at most 60 s."""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.audit.chain import link
from egress.audit.checkpoint import Signer
from egress.core.audit_record import AuditRecord, Decision, Findings, Masked, MaskedValue
from egress.core.records import AuditEntry
from egress.report.context import EndpointFacts, ReportContext
from egress.report.model import build
from egress.report.render_json import render_json
from egress.store.sqlite import SqliteStore

T0 = 1_800_000_000.0
ENDPOINTS = (("anthropic", "US"), ("openai-eu", "EU"), ("mistral", "FR"), ("vllm", "self"), (None, None))
KINDS = (("pii", "pii-email"), ("secret", "aws-access-key"), ("proprietary_code", "indexed-repo"), (None, None))
REASONS = ("masking pii", "anthropic: personal data may not go to US", "no candidate endpoint is compliant")


def record(i: int, rng: random.Random) -> AuditRecord:
    endpoint, jurisdiction = ENDPOINTS[rng.randrange(len(ENDPOINTS))]
    kind, rule = KINDS[rng.randrange(len(KINDS))]
    masked = kind is not None and rng.random() < 0.5
    return AuditRecord(
        v=3,
        request_id=f"req_{i}",
        ts=T0 + i * 0.01,
        user=f"u{rng.randrange(50)}",
        team=f"team{rng.randrange(8)}",
        api="anthropic.messages",
        endpoint=endpoint,
        jurisdiction=jurisdiction,
        outcome="forwarded" if endpoint else "refused",
        status=200 if endpoint else 403,
        credential_plan="api",
        findings=Findings(kinds={kind: 1}, rules={rule: 1}, total=1) if kind and rule else Findings(),
        masked=Masked(
            count=1, rewritten=True, values=(MaskedValue(hash="h" * 16, kind=kind, occurrences=1, rule=rule),)
        )
        if masked
        else Masked(),
        decision=Decision(
            id=f"d{i}",
            action="mask" if masked else "allow" if endpoint else "block",
            endpoints=(endpoint,) if endpoint else (),
            reasons=(REASONS[rng.randrange(len(REASONS))],),
            policy_revision=f"rev-{i // 250_000}",
        ),
    )


def fill(store: SqliteStore, n: int, key: Ed25519PrivateKey) -> None:
    rng = random.Random(18)
    signer = Signer(key)
    batch: list[AuditEntry] = []
    for i in range(1, n + 1):
        r = record(i, rng)
        batch.append(
            AuditEntry(r.request_id or "", float(r.ts or 0), r.user, r.team, r.api, r.endpoint, r.jurisdiction,
                       r.outcome or "", r.status, r.canonical())
        )  # fmt: skip
        if len(batch) == 10_000 or i == n:
            store.append_audit(batch, link)
            batch = []
        if i % 100_000 == 0 or i == n:
            head = store.audit_head()
            assert head is not None
            store.append_checkpoint(signer.sign(head[0], head[1], T0 + i * 0.01))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    path = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(tempfile.mkdtemp()) / "report-bench.db"
    store = SqliteStore(path)
    store.migrate()
    if store.audit_count() != n:
        started = time.perf_counter()
        fill(store, n, Ed25519PrivateKey.generate())
        print(f"filled {n} records in {time.perf_counter() - started:.1f} s ({path})")
    facts = {
        name: EndpointFacts(name, "op", "US", j, j, name, True, 30, False, False, ("US CLOUD Act",), None, None)
        for name, j in ENDPOINTS
        if name and j
    }
    context = ReportContext(endpoints=facts, home_jurisdictions=("EU",), measures=("masking",))
    wall, cpu = time.perf_counter(), time.process_time()
    report = build(store.iter_audit(), store.list_checkpoints(), context, 0.0, 2e9)
    body = render_json(report)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    store.close()
    f = report.figures
    print(
        f"report over {f.records} records ({len(f.flows)} flow rows, {len(report.anchors)} anchors, "
        f"{len(body)} bytes of JSON): {wall:.1f} s wall, {cpu:.1f} s CPU"
    )


if __name__ == "__main__":
    main()
