"""The audit record's cost on the request path, side by side with the dict it replaced.

For the same exchanges (a clean request, a masked request with findings, a shadow decision and a
recording, and a write-ahead egress record), in one run, alternating:

- build: what the request path does (`build_entry` / `build_egress`), against a plain-dict
  builder written the way the records were built before the typed record (digests left to the
  writer thread in both);
- finish: what the audit writer thread does (`finalize`: the digests, then canonical JSON);
- read: `parse_record` against `orjson.loads` into a dict (what readers did before).

Medians of per-operation times over many rounds (microseconds), and the typed/dict ratio.

    .venv/bin/python bench/audit_record_bench.py [--rounds 201] [--ops 200] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from egress.audit.record import AuditDraft, build_egress, build_entry, finalize  # noqa: E402
from egress.core.approvals import ApprovalNote  # noqa: E402
from egress.core.audit_record import parse_record  # noqa: E402
from egress.core.capture import Capture  # noqa: E402
from egress.core.exchange import (  # noqa: E402
    Action,
    Api,
    ClientInfo,
    Decision,
    Exchange,
    Finding,
    Kind,
    MaskedRequest,
    MaskedValue,
    Outcome,
    ParsedRequest,
    Principal,
    Prompt,
    Usage,
)

# --- the dict builders, the way records were built before the typed record ------------------------


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def dict_entry(x: Exchange) -> dict[str, Any]:
    principal = x.principal
    client = x.client
    decision = x.decision
    total_ns = (x.finished_ns or x.started_ns) - x.started_ns
    kinds = Counter(str(f.kind) for f in x.findings) if x.findings else {}
    rules = Counter(f.rule_id for f in x.findings) if x.findings else {}
    return {
        "v": 3,
        "request_id": x.request_id,
        "ts": x.started_at,
        "user": principal.user if principal else None,
        "team": principal.team if principal else None,
        "key_id": principal.key_id if principal else None,
        "auth": principal.method if principal else None,
        "client": client.name if client else None,
        "user_agent": client.user_agent if client else None,
        "session_id": client.session_id if client else None,
        "api": x.api.value if x.api else None,
        "method": x.method,
        "path": x.path,
        "model": x.parsed.model if x.parsed else None,
        "stream": x.parsed.stream if x.parsed else None,
        "endpoint": x.endpoint_name,
        "translated_from": x.translated_from.value if x.translated_from else None,
        "jurisdiction": x.endpoint_jurisdiction,
        "region": x.endpoint_region,
        "upstream_attempts": x.upstream_attempts,
        "upstream_status": x.upstream_status,
        "status": x.status,
        "outcome": (x.outcome or Outcome.FAILED).value,
        "error_code": x.error.code.value if x.error else None,
        "error_stage": x.error.stage if x.error else None,
        "approval": (
            {"id": x.approval.approval_id, "status": x.approval.status, "approver": x.approval.approver}
            if x.approval is not None
            else None
        ),
        "bytes_in": len(x.body),
        "bytes_out": x.bytes_out,
        "upstream_body_sha256": None,
        "recorded": x.capture is not None,
        "response_sha256": None,
        "usage": {
            "input_tokens": x.usage.input_tokens,
            "output_tokens": x.usage.output_tokens,
            "cache_read_tokens": x.usage.cache_read_tokens,
            "cache_write_tokens": x.usage.cache_write_tokens,
        },
        "latency_ms": {
            "total": _ms(total_ns),
            "upstream": _ms(x.upstream_ns),
            "gateway": _ms(max(total_ns - x.upstream_ns, 0)),
        },
        "findings": {"total": len(x.findings), "kinds": dict(kinds), "rules": dict(rules)},
        "decision": (
            {
                "id": decision.decision_id,
                "action": decision.action.value,
                "endpoints": list(decision.endpoints),
                "reasons": list(decision.reasons),
                "obligations": list(decision.obligations),
                "policy_revision": decision.policy_revision,
                "candidates": list(x.candidates),
                "shadow": (
                    {
                        "action": decision.shadow_of.action.value,
                        "endpoints": list(decision.shadow_of.endpoints),
                        "mask": list(decision.shadow_of.mask_kinds),
                        "reasons": list(decision.shadow_of.reasons),
                        "policy_revision": decision.shadow_of.policy_revision,
                    }
                    if decision.shadow_of
                    else None
                ),
            }
            if decision
            else None
        ),
        "masked": {
            "count": x.masked.masked_count if x.masked else 0,
            "values": [
                {"kind": str(v.kind), "rule": v.rule_id, "hash": v.value_hash, "occurrences": v.occurrences}
                for v in x.masked.values
            ]
            if x.masked
            else [],
            "rewritten": x.masked.rewritten if x.masked else False,
        },
    }


def dict_egress(x: Exchange, body: bytes) -> dict[str, Any]:
    principal = x.principal
    decision = x.decision
    return {
        "v": 4,
        "type": "egress",
        "request_id": x.request_id,
        "ts": x.started_at,
        "user": principal.user if principal else None,
        "team": principal.team if principal else None,
        "key_id": principal.key_id if principal else None,
        "auth": principal.method if principal else None,
        "client": x.client.name if x.client else None,
        "api": x.api.value if x.api else None,
        "path": x.path,
        "model": x.parsed.model if x.parsed else None,
        "endpoint": x.endpoint_name,
        "translated_from": x.translated_from.value if x.translated_from else None,
        "jurisdiction": x.endpoint_jurisdiction,
        "region": x.endpoint_region,
        "attempt": x.upstream_attempts + 1,
        "status": None,
        "outcome": "egress",
        "upstream_body_sha256": None,
        "bytes_upstream": len(body),
        "decision": (
            {
                "id": decision.decision_id,
                "action": decision.action.value,
                "endpoints": list(decision.endpoints),
                "policy_revision": decision.policy_revision,
            }
            if decision
            else None
        ),
    }


# --- the exchanges --------------------------------------------------------------------------------


def exchange(masked: bool) -> Exchange:
    """A forwarded Anthropic request as the gateway finishes it: clean, or with three findings,
    two masked values, a shadow decision, an approval and a recording (`masked`)."""
    x = Exchange(
        request_id="egr_0123456789abcdef01234567",
        method="POST",
        path="/v1/messages",
        query="",
        headers=[],
        api=Api.ANTHROPIC_MESSAGES,
        started_ns=1_000_000,
        started_at=1_700_000_000.25,
    )
    x.body = b"x" * 32768
    x.principal = Principal(user="alice", team="platform", key_id="key_0123456789ab", method="gateway_key")
    x.client = ClientInfo(name="claude-code", user_agent="claude-cli/2.0.14 (external, cli)", session_id="5f0c3f0e")
    x.parsed = ParsedRequest(
        api=Api.ANTHROPIC_MESSAGES, model="claude-sonnet-4-5", stream=True, document={}, prompt=Prompt(())
    )
    x.candidates = ("anthropic", "bedrock-eu")
    shadow = Decision(
        action=Action.BLOCK, endpoints=(), mask_kinds=(), reasons=("strict",), decision_id="d2", policy_revision="r2"
    )
    x.decision = Decision(
        action=Action.MASK if masked else Action.ALLOW,
        endpoints=("anthropic",),
        mask_kinds=("secret",) if masked else (),
        reasons=("team platform may use US endpoints",),
        decision_id="dec_0123456789ab",
        policy_revision="r1",
        obligations=("record_payload",) if masked else (),
        shadow_of=shadow if masked else None,
    )
    if masked:
        x.findings = tuple(
            Finding(kind=Kind.SECRET, rule_id=rule, segment=0, start=0, end=1, confidence=1.0)
            for rule in ("aws-access-key-id", "aws-secret-access-key", "github-pat")
        )
        x.masked = MaskedRequest(
            body=b"{}",
            placeholders={},
            masked_count=3,
            values=(
                MaskedValue(kind=Kind.SECRET, rule_id="aws-access-key-id", value_hash="ab" * 16, occurrences=2),
                MaskedValue(kind=Kind.SECRET, rule_id="github-pat", value_hash="cd" * 16, occurrences=1),
            ),
            rewritten=True,
        )
        x.approval = ApprovalNote(approval_id="apr_01", status="used", approver="bob")
        x.capture = Capture(1 << 20)
        x.capture.add(b"event: message_start\n\n" * 40)
    x.upstream_body = b"y" * 32768
    x.endpoint_name = "anthropic"
    x.endpoint_jurisdiction = "US"
    x.endpoint_region = "us-east-1"
    x.upstream_attempts = 1
    x.upstream_status = 200
    x.upstream_ns = 850_000_000
    x.status = 200
    x.bytes_out = 2048
    x.usage = Usage(input_tokens=1200, output_tokens=300, cache_read_tokens=1000, cache_write_tokens=None)
    x.outcome = Outcome.FORWARDED
    x.finished_ns = 1_000_000 + 900_000_000
    return x


# --- measuring ------------------------------------------------------------------------------------


def per_op_us(fn: Callable[[], object], ops: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(ops):
        fn()
    return (time.perf_counter_ns() - start) / ops / 1000


def side_by_side(rounds: int, ops: int, old: Callable[[], object], new: Callable[[], object]) -> dict[str, float]:
    """Alternating short rounds of both, so load on the machine falls on both alike: medians and
    minimums of the per-operation times."""
    olds, news = [], []
    for _ in range(rounds):
        olds.append(per_op_us(old, ops))
        news.append(per_op_us(new, ops))
    o, n = statistics.median(olds), statistics.median(news)
    return {
        "dict_us": round(o, 2),
        "typed_us": round(n, 2),
        "ratio": round(n / o, 3),
        "dict_min_us": round(min(olds), 2),
        "typed_min_us": round(min(news), 2),
        "min_ratio": round(min(news) / min(olds), 3),
    }


def cases(x: Exchange, body: bytes, egress: bool) -> dict[str, tuple[Callable[[], object], Callable[[], object]]]:
    """build, finish (the canonical bytes of a built record; the digests, the same hashlib calls
    on both paths, are left out so they do not hide the difference), both, and read."""
    if egress:
        dict_draft: Callable[[], dict[str, Any]] = lambda: dict_egress(x, body)  # noqa: E731
        typed_draft: Callable[[], AuditDraft] = lambda: build_egress(x, body)  # noqa: E731
    else:
        dict_draft, typed_draft = lambda: dict_entry(x), lambda: build_entry(x)
    built_dict = AuditDraft(dict_draft(), None)
    built_typed = AuditDraft(typed_draft().record, None)
    stored = finalize(typed_draft()).canonical
    return {
        "build": (lambda: AuditDraft(dict_draft(), None), typed_draft),
        "finish": (lambda: finalize(built_dict), lambda: finalize(built_typed)),
        "both": (
            lambda: finalize(AuditDraft(dict_draft(), None)),
            lambda: finalize(AuditDraft(typed_draft().record, None)),
        ),
        "read": (lambda: orjson.loads(stored), lambda: parse_record(stored)),
    }


def same_bytes(x: Exchange, body: bytes, egress: bool) -> bool:
    received = x.capture.chunks if x.capture is not None else None
    if egress:
        old = finalize(AuditDraft(dict_egress(x, body), body))
        return old.canonical == finalize(build_egress(x, body)).canonical
    old = finalize(AuditDraft(dict_entry(x), x.upstream_body, received))
    return old.canonical == finalize(build_entry(x)).canonical


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=201)
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    body = b"y" * 32768
    results: dict[str, dict[str, dict[str, float]]] = {}
    shapes = {"clean": (exchange(False), False), "masked": (exchange(True), False), "egress": (exchange(False), True)}
    for shape, (x, egress) in shapes.items():
        if not same_bytes(x, body, egress):
            raise SystemExit(f"{shape}: the typed record's bytes differ from the dict's")
        results[shape] = {
            step: side_by_side(args.rounds, args.ops, old, new) for step, (old, new) in cases(x, body, egress).items()
        }
    print(
        f"{'record':8} {'step':7} {'dict µs':>9} {'typed µs':>9} {'ratio':>6}   {'min: dict':>9} {'typed':>6} {'ratio':>6}"
    )
    for shape, steps in results.items():
        for step, r in steps.items():
            print(
                f"{shape:8} {step:7} {r['dict_us']:9.2f} {r['typed_us']:9.2f} {r['ratio']:6.3f}"
                f"   {r['dict_min_us']:9.2f} {r['typed_min_us']:6.2f} {r['min_ratio']:6.3f}"
            )
    if args.json:
        args.json.write_text(json.dumps({"rounds": args.rounds, "ops": args.ops, "results": results}, indent=2))


if __name__ == "__main__":
    main()
