from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from egress.app import open_configured_store
from egress.audit.chain import verify
from egress.config import load_config
from egress.gateway.auth import new_key
from egress.store.base import SqlStore
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import UpstreamSimulator, fixtures_dir


@pytest.fixture(scope="session")
def sim() -> Iterator[UpstreamSimulator]:
    if not fixtures_dir().is_dir():
        raise RuntimeError(f"recorded fixtures not found at {fixtures_dir()} (tests/fixtures/recorded)")
    simulator = UpstreamSimulator(seed=secrets.randbits(32)).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def upstream(sim: UpstreamSimulator) -> UpstreamSimulator:
    sim.reset()
    return sim


class Running:
    """A running gateway with a key, and helpers to read what it audited."""

    def __init__(self, gateway: ThreadedGateway, key: str, store: SqlStore) -> None:
        self.gateway = gateway
        self.key = key
        self.store = store

    @property
    def url(self) -> str:
        return self.gateway.url

    def audit(self, expect: int, timeout: float = 5.0, egress: bool = False) -> list[dict]:
        """The audit records, waiting until at least `expect` have been committed. The write-ahead
        egress records (one per upstream attempt, before the request's own record) are left out
        unless `egress`; the whole chain is verified either way."""
        import orjson

        deadline = time.monotonic() + timeout
        while True:
            rows = list(self.store.iter_audit())
            records = [orjson.loads(r.entry.canonical) for r in rows]
            if not egress:
                records = [r for r in records if r.get("type") != "egress"]
            if len(records) >= expect or time.monotonic() > deadline:
                report = verify(rows)
                assert report.ok, report.first_break
                return records
            time.sleep(0.02)

    def stop(self) -> None:
        self.gateway.stop()
        self.store.close()


def start_gateway(path: Path, user: str = "alice", team: str | None = "platform") -> Running:
    """The gateway of this config file, started, with a fresh gateway key for `user`."""
    gw = ThreadedGateway.from_file(path)
    store = open_configured_store(load_config(path, env=SIM_ENV))
    secret, key = new_key(user, team)
    store.create_key(key)
    gw.start()
    return Running(gw, secret, store)


@pytest.fixture
def gateway(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[Running]:
    running = start_gateway(write_config(tmp_path, upstream.url))
    yield running
    running.stop()
