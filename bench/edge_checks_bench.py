"""The edge checks of scoped keys and credential plans, side by side with the path before them.

Per request, in one process, alternating A and B in every round (CPU time, `time.process_time_ns`,
so other processes on a shared machine do not count):

- A, before: the key ring's lookup of a gateway key (SHA-256, dict) and a Principal, as
  `authenticate` did before expiry and scope; and the decision cache's key over the policy
  input without `caller`, `credential` and the candidates' `passthrough`;
- B, now: `authenticate` (lookup, the expiry check, the last-use note, a Principal with kind and
  scope) for a key that expires and is scoped in all three dimensions, `in_scope` (API, model
  pattern, endpoints), the credential classifier on a Claude Code-like header list carrying a
  subscription sign-in (the costliest common case besides a ChatGPT JWT, measured too), and the
  cache key over the full input.

Each round times a batch of `--ops` requests per variant; the per-request time of a round is the
batch's CPU time / ops. Reported: the median (p50) over rounds of each variant and of B − A.

    .venv/bin/python bench/edge_checks_bench.py [--rounds 301] [--ops 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from egress.core.endpoint import Credentials, Endpoint  # noqa: E402
from egress.core.exchange import Principal  # noqa: E402
from egress.core.key_scope import KeyScope  # noqa: E402
from egress.gateway.auth import KeyRing, authenticate, find_gateway_key, in_scope, new_key  # noqa: E402
from egress.identity.plans import CredentialClassifier, bundled_plans  # noqa: E402
from egress.policy.decide import RequestFacts, policy_input  # noqa: E402
from egress.store.sqlite import SqliteStore  # noqa: E402

URLSAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"


def endpoint(name: str, passthrough: bool) -> Endpoint:
    return Endpoint(
        name=name,
        api="anthropic",
        base_url="https://example.org",
        models=("claude-*",),
        credentials=Credentials(passthrough=True) if passthrough else Credentials(env="K", api_key="k"),
        operator="op",
        jurisdiction="US",
        region="us",
        retention_days=30,
        trains_on_api_data=False,
        dpa=True,
    )


def claude_code_headers(gateway_key: str, credential: str) -> list[tuple[bytes, bytes]]:
    """Roughly what Claude Code sends through a gateway (sixteen headers)."""
    return [
        (b"host", b"127.0.0.1:8080"),
        (b"accept", b"application/json"),
        (b"content-type", b"application/json"),
        (b"user-agent", b"claude-cli/2.1.0 (external, cli)"),
        (b"x-app", b"cli"),
        (b"anthropic-version", b"2023-06-01"),
        (b"anthropic-beta", b"claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14"),
        (b"anthropic-dangerous-direct-browser-access", b"true"),
        (b"x-stainless-lang", b"js"),
        (b"x-stainless-os", b"Linux"),
        (b"x-stainless-arch", b"x64"),
        (b"x-stainless-runtime", b"node"),
        (b"x-stainless-retry-count", b"0"),
        (b"x-claude-code-session-id", b"0f8c7b9e-1f7a-4c1e-9a51-3c2f7a8e9d10"),
        (b"x-egress-key", gateway_key.encode()),
        (b"authorization", b"Bearer " + credential.encode()),
    ]


def chatgpt_jwt() -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()

    auth = {"chatgpt_account_id": "5b0f5c3e-3b1f-4e4c-9d1e-0a6f2f8d9c11", "chatgpt_plan_type": "plus"}
    payload = {"iss": "https://auth.openai.com", "exp": 2_000_000_000, "https://api.openai.com/auth": auth}
    return ".".join([part({"alg": "RS256", "kid": "k1"}), part(payload), "s" * 342])


def old_document(doc: dict[str, Any]) -> dict[str, Any]:
    """The input as it was before: no caller, no credential, no passthrough."""
    old = {k: v for k, v in doc.items() if k not in ("caller", "credential")}
    old["candidates"] = [{k: v for k, v in c.items() if k != "passthrough"} for c in doc["candidates"]]
    return old


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=301)
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp())
    store = SqliteStore(folder / "egress.db")
    store.migrate()
    plain_secret, plain_key = new_key("ada", "core")
    scope = KeyScope(apis=("messages",), models=("claude-sonnet-*", "claude-opus-*"), endpoints=("us", "eu"))
    scoped_secret, scoped_key = new_key("ada", "core", expires_at=time.time() + 86_400, scope=scope)
    store.create_keys([plain_key, scoped_key])
    ring = KeyRing(store, refresh_s=3600, last_used_flush_s=1e9)
    await ring.refresh()
    classifier = CredentialClassifier(bundled_plans())
    oauth = "sk-ant-oat01-" + (URLSAFE * 2)[:93] + "AA"
    plain_headers = claude_code_headers(plain_secret, oauth)
    scoped_headers = claude_code_headers(scoped_secret, oauth)
    jwt_headers = [*claude_code_headers(scoped_secret, chatgpt_jwt())[:-1], (b"authorization", b"Bearer " + chatgpt_jwt().encode()),
                   (b"chatgpt-account-id", b"5b0f5c3e")]  # fmt: skip
    candidates = (endpoint("us", True), endpoint("eu", False), endpoint("own", False))
    credential = classifier.classify(scoped_headers, "", b"x-egress-key")
    assert credential is not None and credential.plan.value == "consumer"
    facts_new = RequestFacts("anthropic.messages", "claude-sonnet-4-5", True, "ada", "core", "claude-code", "s1",
                             scope=scope, auth_method="gateway_key", credential=credential)  # fmt: skip
    doc_new = policy_input(facts_new, (), candidates)
    doc_old = old_document(doc_new)
    ops = args.ops

    async def before() -> int:
        started = time.process_time_ns()
        for _ in range(ops):
            secret, _header = find_gateway_key(plain_headers)
            assert secret is not None
            key = await ring.lookup(secret)
            assert key is not None
            Principal(user=key.user, team=key.team, key_id=key.key_id, method="gateway_key")
            orjson.dumps(doc_old, option=orjson.OPT_SORT_KEYS)
        return time.process_time_ns() - started

    async def now(headers: list[tuple[bytes, bytes]]) -> int:
        started = time.process_time_ns()
        for _ in range(ops):
            principal, header = await authenticate(ring, headers, True)
            in_scope(principal, "anthropic.messages", "claude-sonnet-4-5", candidates)
            classifier.classify(headers, "", header)
            orjson.dumps(doc_new, option=orjson.OPT_SORT_KEYS)
        return time.process_time_ns() - started

    for _ in range(5):  # warm up
        await before()
        await now(scoped_headers)
    a: list[float] = []
    b: list[float] = []
    c: list[float] = []
    for i in range(args.rounds):
        order = (0, 1, 2) if i % 2 == 0 else (2, 1, 0)
        for which in order:
            if which == 0:
                a.append(await before() / ops / 1000)
            elif which == 1:
                b.append(await now(scoped_headers) / ops / 1000)
            else:
                c.append(await now(jwt_headers) / ops / 1000)
    diff_b = [y - x for x, y in zip(a, b, strict=True)]
    diff_c = [y - x for x, y in zip(a, c, strict=True)]
    result = {
        "rounds": args.rounds,
        "ops_per_round": ops,
        "before_us_p50": round(statistics.median(a), 2),
        "now_us_p50": round(statistics.median(b), 2),
        "added_us_p50": round(statistics.median(diff_b), 2),
        "now_chatgpt_jwt_us_p50": round(statistics.median(c), 2),
        "added_chatgpt_jwt_us_p50": round(statistics.median(diff_c), 2),
        "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    store.close()


if __name__ == "__main__":
    asyncio.run(main())
