"""Scoped, expiring and rotated keys across two `egress serve` processes on one store: each scope
dimension refused at the edge in the client's native shape, expiry, a rotation's overlap and a
revocation seen by both gateways, last use written when a gateway stops; and the terms of the
client's own credential (a Claude subscription sign-in forwarded by a pass-through endpoint)
refused by the bundled policy and recorded in the audit."""

from __future__ import annotations

import json
import os
import random
import signal
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from egress.config import default_cache_dir
from egress.store.open import open_store
from tests.support.faults import records, wait_for
from tests.support.gateway import SIM_ENV, free_port, write_config
from tests.support.simulator import UpstreamSimulator

EGRESS = [sys.executable, "-m", "egress"]
RNG = random.Random(7)


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([*EGRESS, *args], env=env, capture_output=True, text=True, timeout=60)


class Gateway:
    def __init__(self, env: dict[str, str], config: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [*EGRESS, "serve", "--config", str(config), "--port", str(self.port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"egress serve exited: {self.proc.stdout.read() if self.proc.stdout else ''}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("egress serve did not become ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Setup:
    def __init__(self, env: dict[str, str], config: Path, a: Gateway, b: Gateway, sim: UpstreamSimulator) -> None:
        self.env, self.config, self.a, self.b, self.sim = env, config, a, b, sim

    def key(self, *args: str) -> tuple[str, str]:
        """(key id, key) of a new key."""
        made = run(["keys", "create", "--config", str(self.config), *args], self.env)
        assert made.returncode == 0, made.stderr
        key_id = made.stderr.split("created ", 1)[1].split()[0]
        return key_id, made.stdout.strip()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    tmp = tmp_path_factory.mktemp("keys")
    sim = UpstreamSimulator().start()
    config = write_config(tmp, sim.url, auth={"required": True, "key_refresh_s": 0.2})
    doc = yaml.safe_load(config.read_text())
    # An endpoint that forwards the client's own credential (the embedded default's way).
    doc["providers"].append(
        {**doc["providers"][0], "name": "sim-passthrough", "models": ["own-*"], "credentials": {"passthrough": True}}
    )
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    cache = default_cache_dir(os.environ).parent
    env = {**os.environ, **SIM_ENV, "HOME": str(tmp), "XDG_CACHE_HOME": str(cache)}
    assert run(["keys", "list", "--config", str(config)], env).returncode == 0  # migrates the store first
    a, b = Gateway(env, config), Gateway(env, config)
    try:
        a.wait_ready()
        b.wait_ready()
        yield Setup(env, config, a, b, sim)
    finally:
        a.stop()
        b.stop()
        sim.stop()


def messages(url: str, key: str, model: str = "claude-sonnet-4-5", **headers: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/messages",
        headers={"x-egress-key": key, "anthropic-version": "2023-06-01", **headers},
        json={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]},
        timeout=30,
    )


def responses(url: str, key: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/responses",
        headers={"authorization": f"Bearer {key}"},
        json={"model": "gpt-5", "input": "hi"},
        timeout=30,
    )


def test_api_scope_refused_in_the_openai_shape(setup: Setup) -> None:
    key_id, key = setup.key("--user", "ada", "--apis", "messages")
    assert messages(setup.a.url, key).status_code == 200
    refused = responses(setup.b.url, key)
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["type"] == "permission_error" and error["code"] == "out_of_scope"
    assert "the API openai.responses is outside this credential's scope (apis: messages)" in error["message"]
    assert key not in refused.text and key_id not in refused.text


def test_model_scope_refused_in_the_anthropic_shape(setup: Setup) -> None:
    _, key = setup.key("--user", "ada", "--models", "claude-sonnet-*")
    assert messages(setup.a.url, key, "claude-sonnet-4-5").status_code == 200
    refused = messages(setup.b.url, key, "claude-opus-4-1")
    assert refused.status_code == 403
    body = refused.json()
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert "(models: claude-sonnet-*)" in body["error"]["message"] and key not in refused.text


def test_endpoint_scope(setup: Setup) -> None:
    _, key = setup.key("--user", "ada", "--endpoints", "sim-openai")
    assert responses(setup.a.url, key).status_code == 200
    refused = messages(setup.a.url, key)
    assert refused.status_code == 403 and "(endpoints: sim-openai)" in refused.json()["error"]["message"]


def test_an_expired_key_is_refused_by_both_gateways(setup: Setup) -> None:
    _, key = setup.key("--user", "ada", "--expires", "3s")
    assert messages(setup.a.url, key).status_code == 200
    time.sleep(3.2)
    for gateway in (setup.a, setup.b):
        refused = messages(gateway.url, key)
        assert refused.status_code == 401 and "expired" in refused.json()["error"]["message"]


def test_rotation_overlap_then_revocation_across_two_gateways(setup: Setup) -> None:
    old_id, old = setup.key("--user", "ada", "--team", "core", "--models", "claude-*")
    rotated = run(["keys", "rotate", old_id, "--overlap", "4s", "--config", str(setup.config)], setup.env)
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    new_id = rotated.stderr.split("created ", 1)[1].split(",")[0]
    assert new.startswith("egk_") and new != old and f"successor of {old_id}" in rotated.stderr
    ended = time.monotonic() + 4
    for gateway in (setup.a, setup.b):  # during the overlap both keys work on both gateways
        assert messages(gateway.url, old).status_code == 200
        assert messages(gateway.url, new).status_code == 200
    assert messages(setup.b.url, new, "gpt-5").status_code == 403  # the successor keeps the scope
    time.sleep(max(0.0, ended - time.monotonic()) + 0.5)
    for gateway in (setup.a, setup.b):
        assert messages(gateway.url, old).status_code == 401
        assert messages(gateway.url, new).status_code == 200
    assert run(["keys", "revoke", new_id, "--config", str(setup.config)], setup.env).returncode == 0
    for gateway in (setup.a, setup.b):
        wait_for(lambda g=gateway: messages(g.url, new).status_code == 401, 5, "the revocation to reach a gateway")


def test_a_consumer_sign_in_is_refused_and_the_plan_audited(setup: Setup) -> None:
    """A Claude subscription token forwarded by the pass-through endpoint: not public, so refused
    with why and what to use; an API key is forwarded; the audit holds each plan."""
    _, key = setup.key("--user", "ada")
    urlsafe = string.ascii_letters + string.digits + "-_"
    oauth = "sk-ant-oat01-" + "".join(RNG.choice(urlsafe) for _ in range(93)) + "AA"
    api_key = "sk-ant-api03-" + "".join(RNG.choice(urlsafe) for _ in range(93)) + "AA"
    setup.sim.reset()
    refused = messages(
        setup.a.url, key, "own-claude-1", authorization=f"Bearer {oauth}", **{"anthropic-beta": "oauth-2025-04-20"}
    )
    assert refused.status_code == 403, refused.text
    message = refused.json()["error"]["message"]
    assert "consumer-plan credential (anthropic_oauth)" in message and "use an API key" in message
    assert oauth not in refused.text and setup.sim.received == []
    allowed = messages(setup.a.url, key, "own-claude-1", **{"x-api-key": api_key})
    assert allowed.status_code == 200
    assert setup.sim.received[-1].header("x-api-key") == api_key  # passed through as it came
    store = open_store(f"sqlite:///{setup.config.parent / 'data' / 'egress.db'}")
    try:

        def plans() -> list[str]:
            return [
                r.get("credential_plan") for r in records(store) if r.get("model") == "own-claude-1" and "type" not in r
            ]

        wait_for(lambda: len(plans()) >= 2, 10, "the audit records")
        assert plans()[-2:] == ["consumer", "api"]
    finally:
        store.close()


def test_keys_list_shows_scope_expiry_and_last_use(setup: Setup) -> None:
    key_id, key = setup.key("--user", "ada", "--service-account", "ci-build", "--expires", "30d", "--apis", "messages")
    assert messages(setup.b.url, key).status_code == 200
    setup.b.stop()  # a stopping gateway writes the uses it noted
    listed = run(["keys", "list", "--json", "--config", str(setup.config)], setup.env)
    assert listed.returncode == 0, listed.stderr
    row = next(r for r in json.loads(listed.stdout) if r["key_id"] == key_id)
    assert row["service_account"] == "ci-build" and row["user"] == "ada"
    assert row["scope"] == "apis=messages" and row["state"] == "active"
    assert row["expires"] != "never" and row["last_used"] != "never"
    assert key not in listed.stdout
