"""A remote OPA's decision is complete or refused, and its address stays inside.

- A decision without `mask` masks the configured kinds (`masking.kinds`), never nothing: the
  upstream receives the AWS key masked.
- `policy_unavailable` never shows the client the OPA server's URL; the server log names its
  host and port only, never credentials.
"""

from __future__ import annotations

import logging

import anthropic
import pytest

from egress.policy.rego import RegoSource
from tests.integration.test_sovereign_routing import AWS_KEY, ask, start
from tests.support.gateway import free_port
from tests.support.opa import FakeOpa

NO_MASK = """package egress
import rego.v1

# Allows every candidate and says nothing about masking.
decision := {"action": "allow", "endpoints": [c.name | some c in input.candidates], "reasons": ["no mask field"]}
"""


@pytest.fixture(scope="module")
def opa_without_mask():
    server = FakeOpa(RegoSource((("no_mask.rego", NO_MASK),)), {}).start()
    yield server
    server.stop()


def without_mask_in_process(tmp_path):
    policy_file = tmp_path / "no_mask.rego"
    policy_file.write_text(NO_MASK)
    return {"engine": "rego", "files": [str(policy_file)]}


@pytest.mark.parametrize("engine", ["rego", "opa"])
def test_a_decision_without_mask_masks_the_configured_kinds(sims, opa_without_mask, tmp_path, engine):
    for sim in sims.values():
        sim.reset()
    if engine == "opa":
        policy = {"engine": "opa", "opa_url": opa_without_mask.url, "timeout_ms": 2000, "cache_entries": 0}
    else:
        policy = without_mask_in_process(tmp_path)
    running = start(tmp_path, {name: sim.url for name, sim in sims.items()}, policy=policy, masking={"kinds": ["secret"]})
    try:
        ask(running, f"deploy with AWS_ACCESS_KEY_ID={AWS_KEY} please")
        sent = b"".join(r.body for sim in sims.values() for r in sim.received)
        assert sent, "the request went nowhere"
        assert AWS_KEY.encode() not in sent and b"EGX_AWS_ACCESS_KEY_ID_" in sent
        (record,) = running.audit(1)
        assert record["decision"]["action"] == "allow" and record["outcome"] == "forwarded"
        assert [v["kind"] for v in record["masked"]["values"]] == ["secret"]
    finally:
        running.gateway.stop()
        running.store.close()


def test_policy_unavailable_names_no_internal_url(sims, tmp_path, caplog):
    port = free_port()
    running = start(
        tmp_path,
        {name: sim.url for name, sim in sims.items()},
        policy={"engine": "opa", "opa_url": f"http://opa-user:hunter2@127.0.0.1:{port}", "timeout_ms": 2000},
    )
    caplog.set_level(logging.WARNING, logger="egress")
    try:
        with pytest.raises(anthropic.APIStatusError) as caught:
            ask(running, "hello")
        error = caught.value.body["error"]
        assert error["details"]["error_code"] in ("policy_unavailable", "gateway_not_ready")
        message = error["message"]
        for leak in ("127.0.0.1", str(port), "http://", "opa-user", "hunter2", "/v1/data"):
            assert leak not in message, message
        (record,) = running.audit(1)
        assert "hunter2" not in str(record) and "opa-user" not in str(record)
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert "hunter2" not in logged and "opa-user" not in logged
    finally:
        running.gateway.stop()
        running.store.close()
