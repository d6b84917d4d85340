"""The decide stage on its own: what a policy decision costs, side by side in one run.

    python bench/policy_bench.py [--n 2000]

Rows (all through PolicyService.decide, the pipeline's only call, on a running event loop):
  builtin          the built-in allow-and-mask policy (no Rego), for reference
  rego hit         the bundled Rego policy, an input decided before (the decision cache)
  rego miss        the bundled Rego policy, a new input each time (regopy on its thread)
  session          a Claude-Code-shaped session: 200 turns whose findings change now and then,
                   replayed by 8 users; reports the hit rate and the p50 over all turns
Inputs have 3 candidates (US, EU, self-hosted) and the finding summary of a real agent turn.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

from egress.core.endpoint import Credentials, Endpoint
from egress.policy.decide import AllowServingEndpoints, RequestFacts, policy_input
from egress.policy.rego import RegoPolicy, RegoSource
from egress.policy.service import PolicyService
from egress.policy.settings import PolicySettings


def endpoint(name: str, jurisdiction: str, api: str = "anthropic") -> Endpoint:
    return Endpoint(
        name=name,
        api=api,
        base_url="http://127.0.0.1:9",
        models=("*",),
        credentials=Credentials(passthrough=True),
        operator="op",
        jurisdiction=jurisdiction,
        region="r",
        retention_days=30,
        trains_on_api_data=False,
        dpa=jurisdiction != "self",
    )


CANDIDATES = (endpoint("us-cloud", "US"), endpoint("eu-cloud", "FR"), endpoint("own", "self", "openai-chat"))


def document(user: str, session: str, kinds: dict[str, int], rules: dict[str, int]) -> dict[str, Any]:
    facts = RequestFacts("anthropic.messages", "claude-sonnet-4-5", True, user, "eng", "claude-code", session)
    doc = policy_input(facts, (), CANDIDATES, frozenset({"own"}))
    doc["findings"].update(total=sum(kinds.values()), kinds=kinds, rules=rules)
    return doc


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {statistics.median(ordered):8.1f} µs   p90 {p(0.9):8.1f} µs   p99 {p(0.99):8.1f} µs"


async def timed(service: PolicyService, docs: list[dict[str, Any]]) -> list[float]:
    out = []
    for i, doc in enumerate(docs):
        t0 = time.perf_counter_ns()
        await service.decide(doc, CANDIDATES, f"dec_{i}")
        out.append((time.perf_counter_ns() - t0) / 1000)
    return out


def session_turns(rng: random.Random, users: int, turns: int) -> list[dict[str, Any]]:
    """Agents resend the conversation: a turn's findings are the last turn's plus, sometimes, new."""
    docs = []
    for u in range(users):
        kinds: dict[str, int] = {}
        rules: dict[str, int] = {}
        for _ in range(turns):
            if rng.random() < 0.08:  # a tool result brings something new
                kind, rule = rng.choice([("secret", "aws-access-key-id"), ("pii", "pii-email"), ("pii", "pii-ipv4")])
                kinds[kind] = kinds.get(kind, 0) + 1
                rules[rule] = rules.get(rule, 0) + 1
            docs.append(document(f"dev{u}", f"session-{u}", dict(kinds), dict(rules)))
    return docs


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    rng = random.Random(7)
    rego = RegoPolicy(RegoSource.bundled(), {"mask_kinds": ["secret"]})
    builtin = AllowServingEndpoints(("secret",))
    base = document("dev", "s", {"secret": 2, "pii": 1}, {"aws-access-key-id": 2, "pii-email": 1})

    def service(engine: Any) -> PolicyService:
        return PolicyService(engine, PolicySettings(timeout_ms=5000), builtin)

    print(f"policy revision {rego.revision}; {args.n} decisions per row\n")
    builtin_service = service(builtin)
    builtin_service.cache.entries = 0  # the built-in policy is measured without the cache
    rows = {"builtin": await timed(builtin_service, [base] * args.n)}
    hit = service(rego)
    await hit.decide(base, CANDIDATES, "warm")
    rows["rego hit"] = await timed(hit, [base] * args.n)
    misses = [document(f"u{i}", f"s{i}", {"pii": 1}, {"pii-email": 1}) for i in range(max(200, args.n // 10))]
    rows["rego miss"] = await timed(service(rego), misses)
    turns = session_turns(rng, users=8, turns=200)
    session = service(rego)
    rows["session"] = await timed(session, turns)
    for name, samples in rows.items():
        print(f"{name:10} {percentiles(samples)}   (n={len(samples)})")
    rate = session.cache.hits / (session.cache.hits + session.cache.misses)
    print(f"\nsession: {len(turns)} turns by 8 users, decision cache hit rate {rate:.1%}")
    rego.close()


if __name__ == "__main__":
    asyncio.run(main())
