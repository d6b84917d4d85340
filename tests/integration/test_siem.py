"""SIEM delivery end to end: the deliverer over a real store feeding receivers written by the test
(tests/support/siem_receivers.py), through outages, TLS refusals and partial failures. Each time,
the receiver's copy must hold every record (none lost), duplicates only from batches whose
acknowledgement was lost (at least once), and verify against the gateway's signed checkpoints."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import anthropic
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from prometheus_client import CollectorRegistry

from egress.audit.checkpoint import Signer, load_or_create_signing_key
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.siem.copy import DeliveredRecord, verify_copy
from egress.siem.delivery import SiemDelivery
from egress.siem.metrics import SiemMetrics
from egress.siem.settings import SiemSettings
from egress.store.base import SqlStore
from egress.store.postgres import PostgresStore
from egress.store.sqlite import SqliteStore
from tests.conftest import start_gateway
from tests.support.databases import throwaway_postgres
from tests.support.gateway import write_config
from tests.support.siem_receivers import HttpReceiver, SyslogReceiver, wait_until
from tests.support.simulator import UpstreamSimulator
from tests.support.tls import make_test_ca
from tests.unit.audit.test_chain import entry

KEY = Ed25519PrivateKey.generate()
FAST = {"batch_size": 50, "poll_interval_s": 0.02, "timeout_s": 2, "backoff_initial_s": 0.05, "backoff_cap_s": 0.3}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqlStore]:
    s = SqliteStore(tmp_path / "egress.db")
    s.migrate()
    yield s
    s.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory):
    return make_test_ca(tmp_path_factory.mktemp("siem-ca"))


def writer_for(store: SqlStore) -> AuditWriter:
    settings = AuditSettings(flush_interval_ms=2, max_batch=64, checkpoint_every=100, checkpoint_interval_s=0.2)
    writer = AuditWriter(store, settings, Signer(KEY))
    writer.start()
    return writer


def load(writer: AuditWriter, n: int, per_s: float, first: int = 1) -> threading.Thread:
    """Submit records first..first+n-1 at about `per_s` a second, in a thread."""

    def run() -> None:
        for i in range(first, first + n):
            writer.submit(entry(i))
            if i % 20 == 0:
                time.sleep(20 / per_s)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


async def until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        await asyncio.sleep(0.02)


def complete(copy: list[DeliveredRecord], n: int) -> bool:
    return {d.seq for d in copy} >= set(range(1, n + 1))


def check_copy(copy: list[DeliveredRecord], store: SqlStore, n: int, max_duplicates: int) -> None:
    seqs = Counter(d.seq for d in copy)
    assert sorted(seqs) == list(range(1, n + 1)), "a record is missing from the copy"
    duplicates = sum(c - 1 for c in seqs.values())
    assert duplicates <= max_duplicates
    checkpoints = store.list_checkpoints()
    assert checkpoints and checkpoints[-1].seq == n
    report = verify_copy(copy, checkpoints, KEY.public_key())
    assert report.ok, report.breaks
    assert report.chain.checked == n and report.covered_seq == n


def cursor_seq(store: SqlStore, sink: str) -> int:
    cursor = store.siem_cursor(sink)
    return cursor.seq if cursor is not None else -1


def sample(metrics: SiemMetrics, family: str, sink: str) -> float:
    value = metrics.registry.get_sample_value(family, {"sink": sink})
    return value or 0.0


async def run_outage(
    store: SqlStore, receiver, copy: Callable[[], list[DeliveredRecord]], sink: dict, n: int, env=None
) -> None:
    metrics = SiemMetrics(CollectorRegistry())
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, metrics, env=env)
    writer = writer_for(store)
    delivery.start()
    loader = load(writer, n, per_s=4000)
    try:
        await until(lambda: len({d.seq for d in copy()}) >= n // 4, 30, "a quarter delivered")
        receiver.stop()  # the SIEM goes away during the load
        await until(
            lambda: sample(metrics, "egress_siem_failed_attempts_total", sink["name"]) >= 2, 15, "failed attempts"
        )
        assert sample(metrics, "egress_siem_lag_records", sink["name"]) > 0
        assert sample(metrics, "egress_siem_lag_seconds", sink["name"]) > 0
        assert 0 < sample(metrics, "egress_siem_retry_delay_seconds", sink["name"]) <= FAST["backoff_cap_s"]
        receiver.start()
        await asyncio.to_thread(loader.join, 30)
        await asyncio.to_thread(writer.close)  # signs the final checkpoint
        await until(lambda: complete(copy(), n), 30, "every record delivered")
        await until(
            lambda: (
                sample(metrics, "egress_siem_lag_records", sink["name"]) == 0
                and sample(metrics, "egress_siem_lag_seconds", sink["name"]) == 0
                and sample(metrics, "egress_siem_retry_delay_seconds", sink["name"]) == 0
            ),
            5,
            "lag and retry delay back to 0",
        )
    finally:
        await delivery.stop()
        receiver.close()
    assert sample(metrics, "egress_siem_delivered_records_total", sink["name"]) == n  # each acknowledged once
    failed = sample(metrics, "egress_siem_failed_attempts_total", sink["name"])
    # At least once: only batches whose acknowledgement was lost come again.
    check_copy(copy(), store, n, max_duplicates=int(failed) * sink["delivery"]["batch_size"])
    cursor = store.siem_cursor(sink["name"])
    assert cursor is not None and cursor.seq == n and cursor.owner is None  # released at stop


async def test_hec_outage_loses_nothing_and_copy_verifies(store: SqlStore) -> None:
    receiver = HttpReceiver().start()
    sink = {
        "name": "splunk",
        "type": "http",
        "format": "splunk_hec",
        "url": receiver.url,
        "token_env": "HEC_TOKEN",
        "delivery": FAST,
    }
    env = {"HEC_TOKEN": receiver.hec_token}
    await run_outage(store, receiver, lambda: list(receiver.hec), sink, 2000, env)
    assert not receiver.errors and receiver.refused == 0


async def test_syslog_tls_outage_loses_nothing_and_copy_verifies(store: SqlStore, ca) -> None:
    receiver = SyslogReceiver(ca.server_context()).start()
    sink = {
        "name": "syslog",
        "type": "syslog",
        "address": f"127.0.0.1:{receiver.port}",
        "ca_file": str(ca.ca_cert),
        "delivery": FAST,
    }
    await run_outage(store, receiver, receiver.records, sink, 1500)
    assert not receiver.errors


async def test_syslog_refuses_a_certificate_from_another_ca(store: SqlStore, ca, tmp_path: Path) -> None:
    other = make_test_ca(tmp_path / "other", name="someone else's CA")
    receiver = SyslogReceiver(other.server_context()).start()
    writer = writer_for(store)
    for i in range(1, 11):
        writer.submit(entry(i))
    writer.close()
    sink = {
        "name": "syslog",
        "type": "syslog",
        "address": f"127.0.0.1:{receiver.port}",
        "ca_file": str(ca.ca_cert),
        "delivery": FAST,
    }
    metrics = SiemMetrics(CollectorRegistry())
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, metrics)
    delivery.start()
    try:
        await until(lambda: sample(metrics, "egress_siem_failed_attempts_total", "syslog") >= 3, 10, "failed attempts")
    finally:
        await delivery.stop()
        receiver.close()
    assert receiver.messages == []  # not one byte of the audit reached an unverified server
    cursor = store.siem_cursor("syslog")
    assert cursor is not None and cursor.seq == 0
    assert sample(metrics, "egress_siem_lag_records", "syslog") == 10
    assert sample(metrics, "egress_siem_retry_delay_seconds", "syslog") <= FAST["backoff_cap_s"]


async def test_elastic_bulk_partial_failure_is_retried(store: SqlStore) -> None:
    n = 300
    receiver = HttpReceiver(fail_once={7, 120, 121, 299}).start()
    writer = writer_for(store)
    for i in range(1, n + 1):
        writer.submit(entry(i))
    writer.close()
    sink = {"name": "elastic", "type": "http", "format": "elastic_bulk", "url": receiver.url, "delivery": FAST}
    metrics = SiemMetrics(CollectorRegistry())
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, metrics)
    delivery.start()
    try:
        await until(lambda: len(receiver.bulk_index) == n and not receiver.fail_once, 20, "the index complete")
        await until(lambda: cursor_seq(store, "elastic") == n, 5, "the cursor at the end")
    finally:
        await delivery.stop()
        receiver.close()
    # The three batches with a refused item failed once each and were sent again whole.
    assert sample(metrics, "egress_siem_failed_attempts_total", "elastic") == 3
    # The index holds each record once (its _id is the hash); the raw arrivals repeat those batches.
    assert len(receiver.bulk_index) == n
    check_copy(list(receiver.bulk_index.values()), store, n, max_duplicates=0)
    check_copy(receiver.bulk, store, n, max_duplicates=3 * FAST["batch_size"])


async def test_otlp_logs_copy_verifies(store: SqlStore) -> None:
    n = 250
    receiver = HttpReceiver().start()
    writer = writer_for(store)
    for i in range(1, n + 1):
        writer.submit(entry(i))
    writer.close()
    sink = {"name": "otel", "type": "otlp", "url": receiver.url + "/v1/logs", "delivery": FAST}
    metrics = SiemMetrics(CollectorRegistry())
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, metrics)
    delivery.start()
    try:
        await until(lambda: complete(list(receiver.otlp), n), 20, "every record over OTLP")
    finally:
        await delivery.stop()
        receiver.close()
    check_copy(list(receiver.otlp), store, n, max_duplicates=0)


async def test_two_processes_on_one_postgres_store_do_not_double_deliver() -> None:
    n = 600
    receiver = HttpReceiver(hec_token="t").start()
    with throwaway_postgres() as url:
        stores = [PostgresStore(url), PostgresStore(url)]
        stores[0].migrate()
        writer = writer_for(stores[0])
        for i in range(1, n + 1):
            writer.submit(entry(i))
        writer.close()
        sink = {
            "name": "splunk",
            "type": "http",
            "format": "splunk_hec",
            "url": receiver.url,
            "token_env": "HEC_TOKEN",
            "delivery": FAST,
        }
        env = {"HEC_TOKEN": "t"}
        deliveries = [
            SiemDelivery(SiemSettings(sinks=(sink,)), s, SiemMetrics(CollectorRegistry()), env=env, owner=f"p{i}")
            for i, s in enumerate(stores)
        ]
        for d in deliveries:
            d.start()
        try:
            await until(lambda: complete(list(receiver.hec), n), 20, "every record")
            await asyncio.sleep(0.3)
        finally:
            for d in deliveries:
                await d.stop()
            receiver.close()
        # One lease holder delivered; with no failure, nothing came twice.
        delivered = [w.delivered for d in deliveries for w in d.workers]
        assert sorted(delivered) == [0, n]
        check_copy(list(receiver.hec), stores[0], n, max_duplicates=0)
        for s in stores:
            s.close()


AWS_KEY = "AKIAQYLPMN5HHHFPZAM2"  # shaped like a real key: masked before it leaves, never audited


def test_stalled_siem_costs_requests_nothing_and_gets_no_secret(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    """The real gateway with a sink that never answers in time: requests are served regardless,
    their records wait in the chain, and once the SIEM answers they all arrive, without the
    secret a prompt carried, and verify against the gateway's own checkpoints."""
    receiver = HttpReceiver(hec_token="gw-token", delay_s=3.0).start()
    sink = {
        "name": "splunk",
        "type": "http",
        "format": "splunk_hec",
        "url": receiver.url,
        "token_env": "SIEM_HEC_TOKEN",
        "delivery": {**FAST, "timeout_s": 0.5},
    }
    path = write_config(tmp_path, upstream.url, siem={"sinks": [sink]}, audit={"checkpoint_interval_s": 0.2})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIEM_HEC_TOKEN", "gw-token")
        running = start_gateway(path)
    try:
        claude = anthropic.Anthropic(
            base_url=running.url, api_key="sk-ant-client", default_headers={"x-egress-key": running.key}, max_retries=0
        )
        for i in range(12):
            text = f"deploy with {AWS_KEY} please" if i % 3 == 0 else f"hello {i}"
            reply = claude.messages.create(
                model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": text}]
            )
            assert reply.content
        records = running.audit(12, egress=True)
        assert cursor_seq(running.store, "splunk") in (-1, 0)  # nothing acknowledged: the SIEM stalls
        receiver.delay_s = 0.0  # the SIEM recovers
        n = len(records)
        wait_until(lambda: complete(list(receiver.hec), n), 20, "the gateway's records delivered")
        wait_until(lambda: running.store.last_checkpoint_seq() >= n, 10, "a checkpoint over them")
        copy = [d for d in receiver.hec if d.seq <= n]
        checkpoints = [cp for cp in running.store.list_checkpoints() if cp.seq <= n]
        public = load_or_create_signing_key(running.gateway.config.audit_signing_key_file).public_key()
        report = verify_copy(copy, checkpoints, public, through=n)
        assert report.ok, report.breaks
        assert all(AWS_KEY.encode() not in d.canonical for d in receiver.hec)
        assert any(b"aws" in d.canonical.lower() for d in receiver.hec)  # the finding's kind is there
    finally:
        running.stop()
        receiver.close()


def seeded(store: SqlStore, n: int) -> None:
    writer = writer_for(store)
    for i in range(1, n + 1):
        writer.submit(entry(i))
    writer.close()


async def deliver_all(store: SqlStore, sink: dict, copy: Callable[[], list[DeliveredRecord]], n: int) -> SiemMetrics:
    metrics = SiemMetrics(CollectorRegistry())
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, metrics)
    delivery.start()
    try:
        await until(lambda: complete(copy(), n), 20, "every record")
    finally:
        await delivery.stop()
    return metrics


async def test_syslog_mutual_tls_sends_the_client_certificate(store: SqlStore, ca) -> None:
    seeded(store, 120)
    receiver = SyslogReceiver(ca.server_context(require_client_cert=True)).start()
    base = {"type": "syslog", "address": f"127.0.0.1:{receiver.port}", "ca_file": str(ca.ca_cert), "delivery": FAST}
    try:
        # Without a client certificate the server refuses the handshake: nothing delivered.
        metrics = SiemMetrics(CollectorRegistry())
        delivery = SiemDelivery(SiemSettings(sinks=({**base, "name": "anonymous"},)), store, metrics)
        delivery.start()
        await until(lambda: sample(metrics, "egress_siem_failed_attempts_total", "anonymous") >= 2, 10, "refusals")
        await delivery.stop()
        assert receiver.messages == [] and cursor_seq(store, "anonymous") == 0
        sink = {
            **base,
            "name": "mtls",
            "client_cert_file": str(ca.client_cert),
            "client_key_file": str(ca.client_key),
        }
        await deliver_all(store, sink, receiver.records, 120)
    finally:
        receiver.close()
    check_copy(receiver.records(), store, 120, max_duplicates=0)


async def test_syslog_over_plain_tcp(store: SqlStore) -> None:
    seeded(store, 120)
    receiver = SyslogReceiver(None).start()
    sink = {"name": "plain", "type": "syslog", "address": f"127.0.0.1:{receiver.port}", "tls": False, "delivery": FAST}
    try:
        await deliver_all(store, sink, receiver.records, 120)
    finally:
        receiver.close()
    assert not receiver.errors
    check_copy(receiver.records(), store, 120, max_duplicates=0)


async def test_syslog_server_closing_without_close_notify_is_no_acknowledgement(store: SqlStore, ca) -> None:
    """A server that reads a little and drops the connection (TCP closed, no TLS close_notify):
    the batch is not acknowledged and the cursor stays."""
    seeded(store, 60)
    context = ca.server_context()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    accepted = []

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    accepted.append(len(conn.recv(100)))
                    # close() of a Python TLS socket sends no close_notify: a dropped connection.
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    sink = {
        "name": "drop",
        "type": "syslog",
        "address": f"127.0.0.1:{port}",
        "ca_file": str(ca.ca_cert),
        "delivery": FAST,
    }
    metrics = SiemMetrics(CollectorRegistry())
    delivery = SiemDelivery(SiemSettings(sinks=(sink,)), store, metrics)
    delivery.start()
    try:
        await until(lambda: sample(metrics, "egress_siem_failed_attempts_total", "drop") >= 3, 10, "failed attempts")
    finally:
        await delivery.stop()
        listener.close()
    assert accepted and all(n > 0 for n in accepted)  # bytes did arrive each time
    assert cursor_seq(store, "drop") == 0
