"""Rate limits and budgets across replicas: three `egress serve` processes on one PostgreSQL
database and the real Redis (127.0.0.1:6379, a key prefix of this module's own), with concurrent
clients spread over the three.

- Requests: a team limit of N per minute admits N (the documented tolerance is 2 %; fixed
  windows counted by one atomic script admit exactly N within a window); every other request
  gets Anthropic's native 429 (rate_limit_error, retry-after), nothing of it reaches the
  upstream, and its audit record names the limit.
- Tokens: a team's output tokens per minute, reconciled from the usage the simulator's answers
  report: the tokens admitted are the budget, overshot by at most the answers in flight when it
  was spent (one per client), within 2 %.
- Redis unreachable (a closed port): a replica counts on its own, per process, and says so in
  its metric and once in its log.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from egress.config import default_cache_dir
from egress.core.audit_record import parse_record
from egress.gateway.auth import new_key
from egress.store.open import open_store
from tests.support.databases import throwaway_postgres
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.simulator import DEFAULT_FIXTURE, UpstreamSimulator, assemble_anthropic

EGRESS = [sys.executable, "-m", "egress"]
REDIS_URL = "redis://127.0.0.1:6379/0"
RPM = 60  # the qa team's requests per minute
TOKEN_ANSWERS = 100  # the tok team's output budget, in answers of the simulator's size
CLIENTS = 12
HEADERS = {"anthropic-version": "2023-06-01"}
METRICS_TOKEN = secrets.token_urlsafe(16)


@dataclass
class Replica:
    proc: subprocess.Popen
    url: str
    log: Path


def serve(tmp: Path, config: Path, name: str, ready_status: tuple[int, ...] = (200,)) -> Replica:
    port = free_port()
    log = tmp / f"{name}.log"
    env = {
        **os.environ,
        **SIM_ENV,
        "EGRESS_TEST_METRICS_TOKEN": METRICS_TOKEN,
        "HOME": str(tmp),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [*EGRESS, "serve", "--config", str(config), "--port", str(port), "--workers", "1"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Replica(proc, f"http://127.0.0.1:{port}", log)


def wait_ready(replica: Replica, statuses: tuple[int, ...] = (200,)) -> None:
    deadline = time.monotonic() + 240  # four processes starting at once on a busy 2-core machine
    while time.monotonic() < deadline:
        assert replica.proc.poll() is None, f"egress serve exited: {replica.log.read_text()[-2000:]}"
        try:
            if httpx.get(replica.url + "/readyz", timeout=1).status_code in statuses:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("egress serve did not become ready")


def stop(replica: Replica) -> None:
    if replica.proc.poll() is None:
        os.killpg(replica.proc.pid, signal.SIGTERM)
        try:
            replica.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(replica.proc.pid, signal.SIGKILL)


@dataclass
class Cluster:
    sim: UpstreamSimulator
    replicas: list[Replica]
    fallback: Replica
    pg_url: str
    prefix: str
    qa_key: str
    tok_key: str
    fb_key: str
    tokens_per_answer: int


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    raw = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    try:
        raw.ping()
    except redis.RedisError as exc:
        pytest.fail(
            f"Redis does not answer at {REDIS_URL} ({type(exc).__name__}): start redis-server (scripts/test.sh)"
        )
    tmp = tmp_path_factory.mktemp("limits")
    sim = UpstreamSimulator().start()
    answer = assemble_anthropic(sim.fixture_bytes(DEFAULT_FIXTURE["/v1/messages"]))
    per_answer = int(answer["usage"]["output_tokens"])
    assert per_answer > 0, "the simulator's answer reports no output tokens"
    prefix = f"egress-limits-it-{secrets.token_hex(4)}:"
    limits = {
        "teams": {
            "qa": {"requests_per_minute": RPM},
            "tok": {"output_tokens_per_minute": TOKEN_ANSWERS * per_answer},
            "fb": {"requests_per_minute": 4},
        }
    }
    replicas: list[Replica] = []
    try:
        with throwaway_postgres() as pg_url:
            seed = open_store(pg_url)
            seed.migrate()
            keys = {}
            for user, team in (("q1", "qa"), ("t1", "tok"), ("f1", "fb")):
                secret, key = new_key(user, team)
                seed.create_key(key)
                keys[team] = secret
            seed.close()
            shared = tmp / "shared"
            shared.mkdir()
            config = write_config(
                shared, sim.url, store={"url": pg_url}, redis={"url": REDIS_URL, "key_prefix": prefix}, limits=limits
            )
            replicas = [serve(tmp, config, f"replica-{i}") for i in range(3)]
            # The fallback replica: Redis at a closed port (nothing listens on port 1).
            alone = tmp / "alone"
            alone.mkdir()
            fb_config = write_config(
                alone,
                sim.url,
                store={"url": pg_url},
                redis={"url": "redis://127.0.0.1:1/0", "timeout_ms": 100},
                limits=limits,
                metrics={"enabled": True, "token_env": "EGRESS_TEST_METRICS_TOKEN"},
            )
            fallback = serve(tmp, fb_config, "fallback")
            replicas_all = [*replicas, fallback]
            for r in replicas:
                wait_ready(r)
            wait_ready(fallback, (200, 503))  # not ready: its Redis does not answer (reported, not fatal)
            yield Cluster(sim, replicas, fallback, pg_url, prefix, keys["qa"], keys["tok"], keys["fb"], per_answer)
            for r in replicas_all:
                stop(r)
    finally:
        for r in replicas:
            if r.proc.poll() is None:
                os.killpg(r.proc.pid, signal.SIGKILL)
        sim.stop()
        for key in raw.scan_iter(match=prefix + "*"):
            raw.delete(key)
        raw.close()


def body(text: str) -> dict:  # type: ignore[type-arg]
    return {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": [{"role": "user", "content": text}]}


async def hammer(urls: list[str], key: str, total: int, clients: int = CLIENTS) -> list[httpx.Response]:
    """`total` requests from `clients` concurrent clients, spread round-robin over `urls`."""
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    answers: list[httpx.Response] = []

    async def client(c: int) -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while not queue.empty():
                i = queue.get_nowait()
                answers.append(
                    await http.post(
                        urls[i % len(urls)] + "/v1/messages",
                        json=body(f"limits test {c}-{i}"),
                        headers={**HEADERS, "x-egress-key": key},
                    )
                )

    await asyncio.gather(*(client(c) for c in range(clients)))
    return answers


def test_requests_per_minute_across_three_replicas(cluster: Cluster) -> None:
    before = len(cluster.sim.received)
    answers = asyncio.run(hammer([r.url for r in cluster.replicas], cluster.qa_key, RPM * 2 + 30))
    admitted = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code == 429]
    assert len(admitted) + len(refused) == len(answers), {a.status_code for a in answers}
    print(f"\nrequests per minute: limit {RPM}, sent {len(answers)}, admitted {len(admitted)}")
    assert abs(len(admitted) - RPM) <= RPM * 0.02
    assert len(cluster.sim.received) - before == len(admitted)  # nothing refused was forwarded
    sample = refused[0]
    assert 1 <= int(sample.headers["retry-after"]) <= 60
    error = sample.json()
    assert error["type"] == "error" and error["error"]["type"] == "rate_limit_error"
    assert error["error"]["details"]["limit"] == "team qa requests_per_minute"
    # The audit names the limit on each refusal (the records are written within milliseconds).
    deadline = time.monotonic() + 10
    while True:
        store = open_store(cluster.pg_url)
        try:
            records = [parse_record(e.entry.canonical) for e in store.iter_audit()]
        finally:
            store.close()
        limited = [r for r in records if r.team == "qa" and r.status == 429]
        if len(limited) >= len(refused) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(limited) == len(refused)
    assert {r.limit for r in limited} == {"team qa requests_per_minute"}
    assert {r.error_code for r in limited} == {"rate_limit_exceeded"}
    assert all(r.limit is None for r in records if r.team == "qa" and r.status == 200)


def test_output_token_budget_reconciled_from_the_answers_usage(cluster: Cluster) -> None:
    clients = 3
    answers = asyncio.run(hammer([r.url for r in cluster.replicas], cluster.tok_key, TOKEN_ANSWERS * 2, clients))
    admitted = [a for a in answers if a.status_code == 200]
    assert all(a.json()["usage"]["output_tokens"] == cluster.tokens_per_answer for a in admitted)
    tokens = len(admitted) * cluster.tokens_per_answer
    budget = TOKEN_ANSWERS * cluster.tokens_per_answer
    print(f"\noutput tokens per minute: budget {budget}, admitted {len(admitted)} answers = {tokens} tokens")
    # The budget is used up (refusals began only once spent) and overshot by at most the answers
    # in flight when it was: one per client.
    assert budget <= tokens <= budget + clients * cluster.tokens_per_answer
    assert tokens <= budget * 1.02 + cluster.tokens_per_answer
    refused = [a for a in answers if a.status_code == 429]
    assert refused and refused[0].json()["error"]["details"]["limit"] == "team tok output_tokens_per_minute"


def test_redis_unreachable_falls_back_per_process(cluster: Cluster) -> None:
    answers = asyncio.run(hammer([cluster.fallback.url], cluster.fb_key, 10, clients=2))
    assert sorted(a.status_code for a in answers) == [200] * 4 + [429] * 6
    auth = {"authorization": f"Bearer {METRICS_TOKEN}"}
    metrics = httpx.get(cluster.fallback.url + "/metrics", headers=auth, timeout=5).text
    line = next(x for x in metrics.splitlines() if x.startswith("egress_limit_fallbacks_total"))
    assert float(line.split()[-1]) == 10
    log = cluster.fallback.log.read_text()
    assert log.count("rate limits and budgets are counted per process") == 1
