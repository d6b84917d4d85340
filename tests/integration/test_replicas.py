"""Three replicas of `egress serve`, one PostgreSQL database, one Redis: tested, not assumed.

The replicas are separate processes started here, on one throwaway PostgreSQL database and a
private redis-server (a free port, so this module can stop it without touching anyone else's).
No sticky routing: consecutive turns of one conversation go to A, B, C in turn.

- Continuity: a Messages conversation (Claude Code's session header; a compacted summary where no
  detector fires) and a Responses conversation (store, previous_response_id, Codex's session
  header) with secrets masked: every answer restored, the upstream never sees a value.
- Crash safety: a bounded load with canary secrets through all three, one replica `kill -9`'d
  mid-load and restarted: every completed request has its audit record, `egress audit verify`
  passes on the shared chain, no canary in the database, in Redis (every key scanned, its value
  dumped) or in any log. The counts are printed.
- Breakers: an endpoint's circuit that opens on A is open on B and C (they skip it untried).
- Redis stopped halfway (last, it stops this module's Redis): a request that needs the ledger is
  refused with a native 503 and nothing reaches the upstream; a request without a session still
  passes; /readyz says redis; each replica logs the outage once, not per request.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
import redis
import yaml

from egress.config import default_cache_dir
from egress.gateway.auth import new_key
from egress.store.open import open_store
from tests.support.databases import throwaway_postgres
from tests.support.faults import egress_digests, outcomes, received_digests, records
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.simulator import Received, Reply, UpstreamSimulator

EGRESS = [sys.executable, "-m", "egress"]
PLACEHOLDER = re.compile(r"EGX_[A-Z0-9_]+_[a-z]{13}")
JSON = {"content-type": "application/json"}
LOAD_S = 12.0  # the crash test's load (the kill half-way)
LOAD_CLIENTS = 6
CANARY_AWS = "AKIAQYLPMN5HHHFPZAM7"  # shaped like a real key: masked; never at rest


def password() -> str:
    """A random password that only a context rule (DB_PASSWORD=) finds, and always finds: the
    rule's entropy bar turns away ~5 % of uniformly random 20-character strings (few or no
    digits), so each triple here holds an upper-case letter, a digit and a lower-case letter."""
    return "".join(
        secrets.choice(string.ascii_uppercase) + secrets.choice(string.digits) + secrets.choice(string.ascii_lowercase)
        for _ in range(7)
    )


@dataclass
class Replica:
    name: str
    port: int
    log: Path
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Cluster:
    tmp: Path
    config: Path
    pg_url: str
    redis_port: int
    redis_proc: subprocess.Popen
    prefix: str
    key: str
    replicas: list[Replica] = field(default_factory=list)

    def start(self, replica: Replica) -> None:
        env = {
            **os.environ,
            **SIM_ENV,
            "HOME": str(self.tmp),
            "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
        }
        with replica.log.open("ab") as log:
            replica.proc = subprocess.Popen(
                [*EGRESS, "serve", "--config", str(self.config), "--port", str(replica.port), "--workers", "1"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, replica: Replica, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert replica.proc is not None and replica.proc.poll() is None, (
                f"replica {replica.name} exited: {replica.log.read_text()[-2000:]}"
            )
            try:
                if httpx.get(replica.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"replica {replica.name} did not become ready")

    def kill(self, replica: Replica) -> None:
        assert replica.proc is not None
        os.killpg(replica.proc.pid, signal.SIGKILL)
        replica.proc.wait(10)

    def logs(self) -> str:
        return "\n".join(r.log.read_text(errors="replace") for r in self.replicas)


def start_redis(tmp: Path) -> tuple[subprocess.Popen, int]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (apt-get install redis-server; scripts/test.sh does)"
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, socket_timeout=1)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            assert time.monotonic() < deadline, "the private redis-server did not start"
            time.sleep(0.05)
    client.close()
    return proc, port


@pytest.fixture(scope="module")
def cluster(sim: UpstreamSimulator, tmp_path_factory) -> Iterator[Cluster]:
    tmp = tmp_path_factory.mktemp("replicas")
    redis_proc, redis_port = start_redis(tmp)
    prefix = f"egress-replicas-{secrets.token_hex(3)}:"
    with throwaway_postgres() as pg_url:
        config = write_config(
            tmp,
            sim.url,
            store={"url": pg_url},
            redis={"url": f"redis://127.0.0.1:{redis_port}/0", "key_prefix": prefix, "health_interval_ms": 200},
            auth={"key_refresh_s": 0.5},
            audit={"durability": "before_forward"},
        )
        # An endpoint nobody listens on, for the shared breakers (its own model: no other test uses it).
        doc = yaml.safe_load(config.read_text())
        doc["providers"].append(
            {
                **doc["providers"][0],
                "name": "sim-dead",
                "base_url": f"http://127.0.0.1:{free_port()}",
                "models": ["dead-*"],
            }
        )
        config.write_text(yaml.safe_dump(doc, sort_keys=False))
        seed = open_store(pg_url)
        seed.migrate()
        secret, key = new_key("alice", "team-a")
        seed.create_key(key)
        seed.close()
        c = Cluster(tmp, config, pg_url, redis_port, redis_proc, prefix, secret)
        c.replicas = [Replica(n, free_port(), tmp / f"replica-{n}.log") for n in "ABC"]
        try:
            # A first: it creates the keys in the shared data_dir the others read.
            c.start(c.replicas[0])
            c.wait_ready(c.replicas[0])
            for r in c.replicas[1:]:
                c.start(r)
            for r in c.replicas[1:]:
                c.wait_ready(r)
            yield c
        finally:
            for r in c.replicas:
                if r.proc is not None and r.proc.poll() is None:
                    os.killpg(r.proc.pid, signal.SIGTERM)
            for r in c.replicas:
                if r.proc is not None:
                    try:
                        r.proc.wait(20)
                    except subprocess.TimeoutExpired:
                        os.killpg(r.proc.pid, signal.SIGKILL)
            if redis_proc.poll() is None:
                redis_proc.kill()
            redis_proc.wait(10)


# --- scripted model answers: the model cites the placeholders it was shown ----------------------


def cited(received: Received) -> list[str]:
    return list(dict.fromkeys(PLACEHOLDER.findall(received.body.decode())))


def messages_reply(seen: list[Received]) -> Reply:
    def build(received: Received) -> list[bytes]:
        seen.append(received)
        text = "I saw " + " and ".join(cited(received))
        doc = {
            "id": "msg_" + secrets.token_hex(6),
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 5, "output_tokens": 5},
        }
        return [json.dumps(doc).encode()]

    return Reply(headers=JSON, build=build)


def responses_reply(seen: list[Received], response_id: str) -> Reply:
    def build(received: Received) -> list[bytes]:
        seen.append(received)
        text = "I saw " + " and ".join(cited(received))
        doc = {
            "id": response_id,
            "object": "response",
            "created_at": 1,
            "model": "gpt-5.5-codex",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "msg_" + secrets.token_hex(4),
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}],
                }
            ],
            "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10},
        }
        return [json.dumps(doc).encode()]

    return Reply(headers=JSON, build=build)


def messages_turn(url: str, key: str, session: str, text: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/messages",
        json={"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": text}]},
        headers={"x-egress-key": key, "anthropic-version": "2023-06-01", "x-claude-code-session-id": session},
        timeout=30,
    )


def responses_turn(url: str, key: str, session: str | None, text: str, previous: str | None) -> httpx.Response:
    body: dict[str, object] = {"model": "gpt-5.5-codex", "input": text, "store": True}
    if previous is not None:
        body["previous_response_id"] = previous
    headers = {"authorization": f"Bearer {key}"}
    if session is not None:
        headers["session-id"] = session
    return httpx.post(url + "/v1/responses", json=body, headers=headers, timeout=30)


def answer_text(r: httpx.Response) -> str:
    doc = r.json()
    if "content" in doc:
        return doc["content"][0]["text"]
    return doc["output"][0]["content"][0]["text"]


# --- continuity ------------------------------------------------------------------------------


def test_a_messages_conversation_alternating_replicas_stays_masked_and_restored(
    cluster: Cluster, sim: UpstreamSimulator
):
    sim.reset()
    pw = password()
    session = "sess-" + secrets.token_hex(4)
    seen: list[Received] = []
    a, b, c = cluster.replicas
    # Turn 1 on A: only a context rule (DB_PASSWORD=) finds it.
    sim.enqueue(messages_reply(seen))
    r = messages_turn(a.url, cluster.key, session, f"APP_ENV=prod\nDB_PASSWORD={pw}\n")
    assert r.status_code == 200, r.text
    assert pw in answer_text(r)
    # Turns 2..4 on B, C, A: a compacted summary no detector fires on; only the ledger knows.
    for replica in (b, c, a):
        sim.enqueue(messages_reply(seen))
        r = messages_turn(replica.url, cluster.key, session, f"Summary: the database credential {pw} now lives in CI.")
        assert r.status_code == 200, (replica.name, r.text)
        assert pw in answer_text(r), replica.name
    assert len(seen) == 4
    for received in seen:
        assert pw.encode() not in received.body
        assert len(cited(received)) == 1
    assert len({cited(rec)[0] for rec in seen}) == 1  # the same placeholder on every replica


def test_a_responses_conversation_alternating_replicas_is_restored(cluster: Cluster, sim: UpstreamSimulator):
    sim.reset()
    pw = password()
    session = "codex-" + secrets.token_hex(4)
    seen: list[Received] = []
    a, b, c = cluster.replicas
    ids = ["resp_" + secrets.token_hex(6) for _ in range(4)]
    sim.enqueue(responses_reply(seen, ids[0]))
    r = responses_turn(a.url, cluster.key, session, f"remember {CANARY_AWS} and DB_PASSWORD={pw}", None)
    assert r.status_code == 200, r.text
    assert CANARY_AWS in answer_text(r) and pw in answer_text(r)
    # B continues A's answer by its id: the vault (shared store) restores what the model cites.
    for i, (replica, text) in enumerate(
        [(b, "what were they?"), (c, f"the summary says {pw} is the password"), (a, "and once more?")], start=1
    ):
        sim.enqueue(responses_reply(seen, ids[i]))
        r = responses_turn(replica.url, cluster.key, session, text, ids[i - 1])
        assert r.status_code == 200, (replica.name, r.text)
        assert json.loads(seen[-1].body)["previous_response_id"] == ids[i - 1]
        if i == 2:  # the ledger masked the password in the new input on C
            assert pw in answer_text(r)
    for received in seen:
        assert CANARY_AWS.encode() not in received.body and pw.encode() not in received.body


def test_a_continued_responses_answer_citing_an_earlier_placeholder_is_restored_on_another_replica(
    cluster: Cluster, sim: UpstreamSimulator
):
    sim.reset()
    a, b, _ = cluster.replicas
    first: list[Received] = []
    sim.enqueue(responses_reply(first, "resp_first_" + secrets.token_hex(4)))
    r = responses_turn(a.url, cluster.key, None, f"remember {CANARY_AWS}", None)
    assert r.status_code == 200, r.text
    (placeholder,) = cited(first[0])
    previous = r.json()["id"]

    def build(received: Received) -> list[bytes]:
        doc = {
            "id": "resp_second",
            "object": "response",
            "created_at": 1,
            "model": "gpt-5.5-codex",
            "status": "completed",
            "output": [
                {
                    "type": "message",
                    "id": "m",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": f"It was {placeholder}.", "annotations": []}],
                }
            ],
        }
        return [json.dumps(doc).encode()]

    sim.enqueue(Reply(headers=JSON, build=build))
    r = responses_turn(b.url, cluster.key, None, "what was it?", previous)
    assert r.status_code == 200, r.text
    assert answer_text(r) == f"It was {CANARY_AWS}."


# --- crash safety ----------------------------------------------------------------------------


@dataclass
class Load:
    sent: int = 0
    completed: list[str] = field(default_factory=list)  # request ids of 200 answers read in full
    refused: int = 0
    broken: int = 0  # connection errors (the kill, the restart)


def run_load(cluster: Cluster, stop: threading.Event, pw: str) -> Load:
    load = Load()
    lock = threading.Lock()

    def client(w: int) -> None:
        n = 0
        session = f"load-{w}-" + secrets.token_hex(3)
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                n += 1
                replica = cluster.replicas[(w + n) % 3]  # no stickiness: each request to the next
                text = f"load {w}-{n}: deploy with {CANARY_AWS}\nDB_PASSWORD={pw}\n"
                with lock:
                    load.sent += 1
                try:
                    r = http.post(
                        replica.url + "/v1/messages",
                        json={
                            "model": "claude-sonnet-4-5",
                            "max_tokens": 10,
                            "messages": [{"role": "user", "content": text}],
                        },
                        headers={
                            "x-egress-key": cluster.key,
                            "anthropic-version": "2023-06-01",
                            "x-claude-code-session-id": session,
                        },
                    )
                except httpx.TransportError:
                    with lock:
                        load.broken += 1
                    time.sleep(0.05)
                    continue
                with lock:
                    if r.status_code == 200:
                        load.completed.append(r.headers["x-egress-request-id"])
                    else:
                        load.refused += 1

    threads = [threading.Thread(target=client, args=(w,)) for w in range(LOAD_CLIENTS)]
    for t in threads:
        t.start()
    stop.wait(LOAD_S)
    stop.set()
    for t in threads:
        t.join(60)
    return load


def database_text(pg_url: str) -> str:
    """Every row of every table, as text."""
    with psycopg.connect(pg_url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return "\n".join(str(row[0]) for t in tables for row in conn.execute(f'SELECT t::text FROM "{t}" t'))


def redis_bytes(port: int) -> tuple[int, bytes]:
    """Every key (scanned) with its DUMP and its readable value: how many keys, and the bytes."""
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        parts: list[bytes] = []
        keys = list(client.scan_iter(count=1000))
        for key in keys:
            parts += [key, client.dump(key) or b""]
            if client.type(key) == b"hash":
                parts += [k + v for k, v in client.hgetall(key).items()]
        return len(keys), b"".join(parts)
    finally:
        client.close()


def test_kill_9_of_one_replica_under_load_loses_no_record_and_leaks_nothing(cluster: Cluster, sim: UpstreamSimulator):
    sim.reset()
    pw = password()
    a, b, c = cluster.replicas
    stop = threading.Event()
    result: list[Load] = []
    loader = threading.Thread(target=lambda: result.append(run_load(cluster, stop, pw)))
    loader.start()
    try:
        time.sleep(LOAD_S / 2)
        cluster.kill(b)  # mid-load: no shutdown, no flush
        killed_at = time.monotonic()
        cluster.start(b)
        cluster.wait_ready(b)
        restarted_after = time.monotonic() - killed_at
        loader.join(LOAD_S + 90)
    finally:
        stop.set()
    (load,) = result
    # The restarted replica serves again (its requests are counted and audited like the others).
    for n in range(3):
        r = messages_turn(
            b.url, cluster.key, f"after-restart-{n}", f"after the restart: {CANARY_AWS}\nDB_PASSWORD={pw}\n"
        )
        assert r.status_code == 200, r.text
        load.completed.append(r.headers["x-egress-request-id"])
    # The surviving replicas' outcome records are written by their group-commit writers: wait for them.
    deadline = time.monotonic() + 15
    while True:
        store = open_store(cluster.pg_url)
        try:
            stored = list(store.iter_audit())
            rows = records(store)
        finally:
            store.close()
        by_id = outcomes(rows)
        egress_ids = {r["request_id"] for r in rows if r.get("type") == "egress"}
        recorded = set(by_id) | egress_ids
        unrecorded = [rid for rid in load.completed if rid not in recorded]
        if not unrecorded or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    received = received_digests(sim)
    written = egress_digests(rows)
    missing = [d for d in received if d not in written]
    keys, in_redis = redis_bytes(cluster.redis_port)
    verified = subprocess.run(
        [*EGRESS, "audit", "verify", "--config", str(cluster.config)],
        env={**os.environ, **SIM_ENV, "HOME": str(cluster.tmp)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(
        f"\nreplicas crash test (3 replicas, PostgreSQL, Redis; B kill -9'd at {LOAD_S / 2:.0f} s, ready again "
        f"after {restarted_after:.1f} s): sent {load.sent}, completed {len(load.completed)}, refused {load.refused}, "
        f"broken {load.broken}; upstream received {len(received)}; egress records {len(written)}, missing {len(missing)}; "
        f"completed without a record {len(unrecorded)}; audit records {len(stored)}; Redis keys {keys}; "
        f"audit verify rc {verified.returncode}"
    )
    assert len(load.completed) > 30 and load.broken > 0
    assert unrecorded == [], f"{len(unrecorded)} completed requests have no audit record"
    assert missing == [], f"{len(missing)} requests reached the upstream with no egress record"
    assert verified.returncode == 0, verified.stdout + verified.stderr
    leaked = [r.body[:400] for r in sim.received if CANARY_AWS.encode() in r.body or pw.encode() in r.body]
    assert leaked == [], f"{len(leaked)} requests reached the upstream with a canary: {leaked[:3]}"
    at_rest = database_text(cluster.pg_url)
    assert CANARY_AWS not in at_rest and pw not in at_rest
    assert keys >= LOAD_CLIENTS  # each load session's ledger is there, sealed
    assert CANARY_AWS.encode() not in in_redis and pw.encode() not in in_redis
    logs = cluster.logs()
    assert CANARY_AWS not in logs and pw not in logs
    assert a.proc is not None and a.proc.poll() is None and c.proc is not None and c.proc.poll() is None


# --- breakers ---------------------------------------------------------------------------------


def dead_turn(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/messages",
        json={"model": "dead-1", "max_tokens": 10, "messages": [{"role": "user", "content": "hello"}]},
        headers={"x-egress-key": key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )


def test_a_circuit_opened_on_one_replica_is_open_on_the_others(cluster: Cluster):
    a, b, c = cluster.replicas
    for _ in range(3):  # the breaker's threshold: three failures in a row on A
        r = dead_turn(a.url, cluster.key)
        assert r.status_code in (502, 503), r.text
        assert "circuit open" not in r.text
    time.sleep(0.5)  # published, heard
    for replica in (b, c):  # never tried here: skipped, because A's circuit opened
        r = dead_turn(replica.url, cluster.key)
        assert r.status_code == 502, (replica.name, r.text)
        assert '"cause":"circuit_open"' in r.text and "connection refused" not in r.text, (replica.name, r.text)


# --- Redis stopped halfway (last: it stops this module's Redis) -------------------------------


def test_with_redis_stopped_a_session_is_refused_cleanly_and_nothing_leaks(cluster: Cluster, sim: UpstreamSimulator):
    sim.reset()
    pw = password()
    session = "sess-" + secrets.token_hex(4)
    seen: list[Received] = []
    a, b, c = cluster.replicas
    sim.enqueue(messages_reply(seen))
    r = messages_turn(a.url, cluster.key, session, f"DB_PASSWORD={pw}\n")
    assert r.status_code == 200 and pw in answer_text(r)

    cluster.redis_proc.terminate()  # halfway: the conversation goes on without Redis
    cluster.redis_proc.wait(10)
    before = len(sim.received)
    for replica in (b, c, a, b):
        r = messages_turn(replica.url, cluster.key, session, f"Summary: the database credential {pw} now lives in CI.")
        assert r.status_code == 503, (replica.name, r.status_code, r.text)
        assert r.json()["type"] == "error" and r.json()["error"]["type"] in ("overloaded_error", "api_error")
        assert pw not in r.text
    r = responses_turn(c.url, cluster.key, "codex-" + secrets.token_hex(3), f"the summary says {pw}", None)
    assert r.status_code == 503 and "error" in r.json() and pw not in r.text
    assert len(sim.received) == before, "a request that needed the ledger reached the upstream"
    # Without a session id nothing needs the ledger: it degrades, still masked by its detectors.
    r = httpx.post(
        b.url + "/v1/messages",
        json={
            "model": "claude-sonnet-4-5",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": f"use {CANARY_AWS}"}],
        },
        headers={"x-egress-key": cluster.key, "anthropic-version": "2023-06-01"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert CANARY_AWS.encode() not in sim.received[-1].body
    time.sleep(1.0)  # each replica's probe (every 200 ms here) has seen the outage by now
    for replica in cluster.replicas:
        ready = httpx.get(replica.url + "/readyz", timeout=5)
        assert ready.status_code == 503 and "redis" in ready.json()["failing"], ready.text
        log = replica.log.read_text(errors="replace")
        assert log.count("redis failing") == 1, (replica.name, log.count("redis failing"))
    assert pw not in cluster.logs()
