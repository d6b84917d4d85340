from __future__ import annotations

import httpx
import pytest

from egress.telemetry.exposition import Listener, MetricsPage, token_from_env
from egress.telemetry.metrics import GatewayMetrics


@pytest.mark.parametrize(
    ("authorization", "ok"),
    [(None, False), (b"Bearer s3cret", True), (b"Bearer s3cre", False), (b"bearer s3cret", False), (b"s3cret", False)],
)
def test_the_token_is_a_bearer_token(authorization: bytes | None, ok: bool) -> None:
    page = MetricsPage(GatewayMetrics().registry, "s3cret")
    assert page.authorised(authorization) is ok
    assert page.render(authorization).status == (200 if ok else 401)


def test_a_named_but_unset_token_variable_refuses_the_start(monkeypatch) -> None:
    monkeypatch.delenv("EGRESS_UNSET_TOKEN", raising=False)
    with pytest.raises(ValueError, match="EGRESS_UNSET_TOKEN"):
        token_from_env("EGRESS_UNSET_TOKEN")
    monkeypatch.setenv("EGRESS_UNSET_TOKEN", "  ")
    with pytest.raises(ValueError):
        token_from_env("EGRESS_UNSET_TOKEN")
    assert token_from_env(None) is None


def test_the_listener_serves_only_get_metrics() -> None:
    listener = Listener(MetricsPage(GatewayMetrics().registry, None), "127.0.0.1", 0).start()
    try:
        base = f"http://127.0.0.1:{listener.port}"
        r = httpx.get(base + "/metrics")
        assert r.status_code == 200 and "egress_requests_total" in r.text
        assert httpx.get(base + "/").status_code == 404
        assert httpx.post(base + "/metrics").status_code == 404
    finally:
        listener.close()
