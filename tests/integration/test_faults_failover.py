"""Failover with write-ahead: each endpoint attempted gets its own egress record, committed
before any byte goes to it, in the order the attempts were made."""

from __future__ import annotations

import hashlib

from tests.conftest import start_gateway
from tests.support.faults import post, records, wait_for
from tests.support.gateway import free_port, write_config


def endpoint(name: str, url: str, jurisdiction: str) -> dict:
    return {
        "name": name,
        "api": "anthropic",
        "base_url": url,
        "models": ["claude-*"],
        "credentials": {"env": "SIM_ANTHROPIC_KEY"},
        "operator": f"Operator {name}",
        "jurisdiction": jurisdiction,
        "region": "r1",
        "retention_days": 30,
        "trains_on_api_data": False,
        "dpa": True,
    }


def test_each_attempt_has_its_egress_record_before_its_bytes(upstream, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: the connection is refused
    path = write_config(
        tmp_path,
        upstream.url,
        providers=[endpoint("down-first", dead, "DE"), endpoint("sim-second", upstream.url, "FR")],
        audit={"durability": "before_forward"},
    )
    gw = start_gateway(path)
    try:
        answer = post(gw.url, gw.key, 1)
        assert answer.status == 200
        mine = lambda: [r for r in records(gw.store) if r["request_id"] == answer.request_id]  # noqa: E731
        wait_for(lambda: len(mine()) == 3, 5, "the request's own record")
        first, second, own = mine()
        assert (first["type"], first["endpoint"], first["jurisdiction"], first["attempt"]) == (
            "egress",
            "down-first",
            "DE",
            1,
        )
        assert (second["type"], second["endpoint"], second["jurisdiction"], second["attempt"]) == (
            "egress",
            "sim-second",
            "FR",
            2,
        )
        assert own.get("type") is None and own["endpoint"] == "sim-second" and own["upstream_attempts"] == 2
        (received,) = upstream.received
        assert second["upstream_body_sha256"] == hashlib.sha256(received.body).hexdigest()
        assert first["user"] == second["user"] == own["user"] == "alice"
        assert first["decision"]["id"] == own["decision"]["id"]
    finally:
        gw.stop()
