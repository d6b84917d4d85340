"""A remote OPA server as the policy engine: real decisions over its REST API, and every way it
can fail (down, slow, undefined, garbage, 5xx) is a deny, audited, with nothing sent upstream."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import pytest

from egress.policy.rego import RegoSource
from tests.integration.test_sovereign_routing import EMAIL, ask, start
from tests.support.gateway import free_port
from tests.support.opa import FakeOpa


@pytest.fixture(scope="module")
def opa() -> Iterator[FakeOpa]:
    # The OPA server holds the policy's data itself; here: the bundled policy's defaults.
    server = FakeOpa(RegoSource.bundled(), {}).start()
    yield server
    server.stop()


@pytest.fixture
def gw(sims, opa, tmp_path):
    for sim in sims.values():
        sim.reset()
    opa.mode = "ok"
    opa.requests.clear()
    running = start(
        tmp_path,
        {name: sim.url for name, sim in sims.items()},
        policy={"engine": "opa", "opa_url": opa.url, "timeout_ms": 300, "cache_entries": 0},
    )
    yield running
    running.gateway.stop()
    running.store.close()


def test_remote_decisions_route_personal_data(gw, sims, opa):
    ask(gw, f"write to {EMAIL}")
    assert sims["us"].received == [] and len(sims["eu"].received) == 1
    (request,) = opa.requests
    assert request["input"]["version"] == 2 and EMAIL not in str(request)
    (record,) = gw.audit(1)
    assert record["decision"]["policy_revision"] == f"opa:{opa.url}/v1/data/egress/decision"
    assert record["decision"]["action"] == "reroute"


@pytest.mark.parametrize(
    ("mode", "code", "status"),
    [
        ("slow", "policy_unavailable", 503),
        ("undefined", "policy_unavailable", 503),
        ("garbage", "policy_unavailable", 503),
        ("error", "policy_unavailable", 503),
    ],
)
def test_remote_failures_deny(gw, sims, opa, mode, code, status):
    opa.mode = mode
    with pytest.raises(anthropic.APIStatusError) as caught:
        ask(gw, "hello")
    assert caught.value.status_code == status
    assert caught.value.body["error"]["details"]["error_code"] == code
    assert all(not sim.received for sim in sims.values())
    (record,) = gw.audit(1)
    assert record["error_code"] == code and record["error_stage"] == "decide" and record["outcome"] == "refused"


def test_remote_down_denies(sims, tmp_path):
    running = start(
        tmp_path,
        {name: sim.url for name, sim in sims.items()},
        policy={"engine": "opa", "opa_url": f"http://127.0.0.1:{free_port()}", "timeout_ms": 300},
    )
    try:
        # The background probe finds no OPA: not ready, and requests are refused at the door.
        ready = httpx.get(running.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["failing"] == ["policy"]
        with pytest.raises(anthropic.APIStatusError) as caught:
            ask(running, "hello")
        assert caught.value.status_code == 503
        assert caught.value.body["error"]["details"]["error_code"] == "gateway_not_ready"
        assert "policy" in caught.value.body["error"]["message"]
        assert "127.0.0.1" not in caught.value.body["error"]["message"]
        (record,) = running.audit(1)
        assert record["error_code"] == "gateway_not_ready" and record["outcome"] == "refused"
    finally:
        running.gateway.stop()
        running.store.close()
