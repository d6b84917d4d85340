"""Faults of the PostgreSQL store, made for real on the local server: the gateway's backends
terminated mid-load (`pg_terminate_backend`), and the key store unreadable while the audit still
works. Each case: the client's native refusal, nothing upstream that is not recorded, the audit,
readiness, and recovery."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from egress.gateway.auth import new_key
from egress.store.postgres import PostgresStore
from tests.conftest import Running, start_gateway
from tests.support.databases import throwaway_postgres
from tests.support.faults import (
    REFUSALS,
    Answer,
    egress_digests,
    outcomes,
    post,
    readyz,
    received_digests,
    records,
    wait_for,
)
from tests.support.gateway import write_config


@pytest.fixture
def pg_url() -> Iterator[str]:
    with throwaway_postgres() as url:
        yield url


def terminate_backends(url: str) -> int:
    """Terminate every other session on the gateway's database; how many were terminated."""
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        ).fetchall()
    return sum(1 for (ok,) in rows if ok)


def start(tmp_path: Path, sim_url: str, pg: str, **extra) -> Running:
    # Write-ahead on, whatever the default.
    return start_gateway(write_config(tmp_path, sim_url, store={"url": pg}, audit={"durability": "before_forward"}, **extra))


def test_terminated_backends_mid_load_are_replaced(upstream, tmp_path, pg_url):
    gw = start(tmp_path, upstream.url, pg_url)
    reader = PostgresStore(pg_url)
    answers: list[Answer] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(worker: int) -> None:
        n = worker * 100_000
        while not stop.is_set():
            n += 1
            answer = post(gw.url, gw.key, n)
            with lock:
                answers.append(answer)

    threads = [threading.Thread(target=load, args=(w,)) for w in range(4)]
    try:
        for t in threads:
            t.start()
        time.sleep(1.5)
        terminated = terminate_backends(pg_url)
        time.sleep(1.0)
        terminated += terminate_backends(pg_url)
        time.sleep(1.5)
        stop.set()
        for t in threads:
            t.join(30)
        assert terminated >= 2  # the gateway's connections were really cut

        # Clients got answers or native refusals: never a bare 500, never a plain-text error.
        assert all(a.native for a in answers)
        assert all(a.status == 200 or (a.status == 503 and a.code in REFUSALS) for a in answers), {
            (a.status, a.code) for a in answers
        }
        # The store came back by itself: the gateway is ready and answers again.
        wait_for(lambda: readyz(gw.url)[0] == 200, 15, "readiness after the backends were terminated")
        assert post(gw.url, gw.key, 999_999).status == 200
        app = gw.gateway.app
        assert app.pipeline.audit._store.reconnects >= 1  # type: ignore[attr-defined]
        wait_for(lambda: app.pipeline.audit.backlog == 0, 15, "the audit backlog to drain")

        rows = records(reader)
        # 0 egress without a durable record: each body upstream received has its egress record.
        received = received_digests(upstream)
        missing = [d for d in received if d not in egress_digests(rows)]
        assert missing == [], f"{len(missing)} of {len(received)} upstream requests have no egress record"
        # Every answered or refused request has its own record (refusals are audited too).
        by_id = outcomes(rows)
        assert all(a.request_id in by_id for a in answers)
        assert sum(1 for a in answers if a.status == 200) > 0
    finally:
        stop.set()
        gw.stop()
        reader.close()


def test_key_store_down_refuses_natively_and_recovers(upstream, tmp_path, pg_url):
    gw = start(tmp_path, upstream.url, pg_url, auth={"key_refresh_s": 0.3})
    revoked_secret, revoked = new_key("mallory", None)
    gw.store.create_key(revoked)
    admin = psycopg.connect(pg_url, autocommit=True)
    try:
        wait_for(lambda: post(gw.url, revoked_secret, 0).status == 200, 5, "the second key to work")
        before = len(upstream.received)
        # The key store breaks (its table cannot be read); the audit still can be written.
        admin.execute("ALTER TABLE gateway_keys RENAME TO gateway_keys_away")
        unknown = post(gw.url, "egk_" + "x" * 43, 1)
        assert unknown.native and unknown.status == 503 and unknown.code in ("auth_unavailable", "gateway_not_ready")
        # A key revoked during the outage stops working once the ring is stale (3 × 0.3 s).
        admin.execute("UPDATE gateway_keys_away SET revoked_at = 1 WHERE key_id = %s", (revoked.key_id,))
        time.sleep(1.2)
        status, report = readyz(gw.url)
        assert status == 503 and report["failing"] == ["keyring"]
        assert report["checks"]["keyring"]["last_error"] is not None
        stale = [post(gw.url, revoked_secret, 2), post(gw.url, gw.key, 3)]
        assert all(a.native and a.status == 503 and a.code == "gateway_not_ready" for a in stale)
        assert len(upstream.received) == before
        # The store returns: the ring refreshes, the revoked key is refused, the other works.
        admin.execute("ALTER TABLE gateway_keys_away RENAME TO gateway_keys")
        wait_for(lambda: readyz(gw.url)[0] == 200, 10, "readiness after the key store returned")
        assert post(gw.url, revoked_secret, 4).code == "unauthorized"
        assert post(gw.url, gw.key, 5).status == 200
        by_id = outcomes(records(gw.store))
        for answer in [unknown, *stale]:
            assert by_id[answer.request_id]["outcome"] == "refused"
            assert by_id[answer.request_id]["error_code"] == answer.code
    finally:
        admin.close()
        gw.stop()
