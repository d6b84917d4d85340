"""`policy_unavailable` tells the client what failed, never where the OPA server lives; the log
names its host and port, never credentials. A real aiohttp client against a closed port."""

from __future__ import annotations

import logging

import pytest

from egress.core.errors import EgressError, ErrorCode
from egress.policy.decide import AllowServingEndpoints
from egress.policy.remote import RemoteOpa
from egress.policy.service import PolicyService
from egress.policy.settings import PolicySettings
from tests.support.gateway import free_port
from tests.unit.policy.test_service import CANDIDATES, document


async def test_an_unreachable_opa_is_reported_without_its_address(caplog):
    port = free_port()
    engine = RemoteOpa(f"http://opa-user:hunter2@127.0.0.1:{port}/", timeout_s=2.0)
    service = PolicyService(engine, PolicySettings(timeout_ms=3000), AllowServingEndpoints(("secret",)))
    caplog.set_level(logging.WARNING, logger="egress.policy")
    try:
        with pytest.raises(EgressError) as caught:
            await service.decide(document(), CANDIDATES, "dec_1")
    finally:
        await engine.aclose()
    err = caught.value
    assert err.code is ErrorCode.POLICY_UNAVAILABLE and "unreachable" in err.message
    for leak in ("127.0.0.1", str(port), "http", "opa-user", "hunter2", "/v1/data"):
        assert leak not in err.message, err.message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"OPA at 127.0.0.1:{port} is unreachable" in logged
    assert "hunter2" not in logged and "opa-user" not in logged


def test_the_revision_keeps_the_address_without_credentials():
    assert RemoteOpa("http://u:p@opa.internal:8181").revision == "opa:http://opa.internal:8181/v1/data/egress/decision"
    assert RemoteOpa("http://opa.internal:8181").revision == "opa:http://opa.internal:8181/v1/data/egress/decision"
    assert RemoteOpa("http://[::1]:8181").where == "[::1]:8181"
