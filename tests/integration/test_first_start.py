"""`egress serve`'s first start (issue #12): the banner only once the port answers, a port
conflict that fails before anything else, the pid file of a running gateway left alone,
/v1/models on the defaults, and `egress demo`."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from egress.config import default_cache_dir, load_config
from tests.support.gateway import ThreadedGateway, free_port

EGRESS = [sys.executable, "-m", "egress"]


@pytest.fixture
def env(tmp_path: Path) -> dict:
    # The compiled rule prefilter is cached outside the temporary HOME (it takes seconds).
    return {
        **os.environ,
        "HOME": str(tmp_path),
        "EGRESS_DATA_DIR": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(default_cache_dir(os.environ).parent),
    }


class Serve:
    """`egress serve` as a process, its merged output read line by line as it comes."""

    def __init__(self, env: dict, port: int, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*EGRESS, "serve", "--port", str(port), *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str, timeout: float = 180) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                break
            if line is None:
                raise AssertionError(f"egress serve exited ({self.proc.wait()}): {''.join(self.seen)}")
            self.seen.append(line)
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r}: {''.join(self.seen)}")

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        while (line := self.lines.get(timeout=10)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


def test_the_banner_appears_only_once_healthz_answers(env, tmp_path):
    port = free_port()
    serve = Serve(env, port)
    try:
        serve.wait_for("egress listening on")
        # At once, no retry: the banner is printed only when the server answers.
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json() == {"status": "ok"}
        key_line = serve.wait_for("store it now")
        key = key_line.rsplit(": ", 1)[1].strip()
        # The first key works at once (the key ring reads the store on a miss).
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/messages",
            json={"model": "gemini-nothing", "max_tokens": 5, "messages": []},
            headers={"x-egress-key": key, "anthropic-version": "2023-06-01"},
            timeout=10,
        )
        assert answer.status_code != 401, answer.text
    finally:
        out = serve.stop()
    assert out.index("egress listening on") < out.index("store it now")
    assert not (tmp_path / "data" / "egress.pid").exists()  # ours: removed on exit


def test_with_several_workers_the_banner_waits_for_a_worker_to_answer(env, tmp_path):
    port = free_port()
    serve = Serve(env, port, "--workers", "2")
    try:
        serve.wait_for("egress listening on")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        assert (tmp_path / "data" / "egress.pid").read_text().strip() == str(serve.proc.pid)
    finally:
        out = serve.stop()
    assert out.count("egress listening on") == 1 and out.count("store it now") == 1
    assert not (tmp_path / "data" / "egress.pid").exists()


def test_a_port_conflict_fails_before_a_key_or_the_pid_file(env, tmp_path):
    port = free_port()
    first = Serve(env, port)
    try:
        first.wait_for("egress listening on")
        pid_file = tmp_path / "data" / "egress.pid"
        assert pid_file.read_text().strip() == str(first.proc.pid)

        # Same data directory, same port: refused, the running gateway's pid file untouched.
        second = subprocess.run(
            [*EGRESS, "serve", "--port", str(port)], env=env, capture_output=True, text=True, timeout=120
        )
        assert second.returncode != 0
        assert "already in use" in second.stderr and "egk_" not in second.stdout + second.stderr
        assert "listening" not in second.stdout
        assert pid_file.read_text().strip() == str(first.proc.pid)

        # A fresh data directory on the busy port: no key is minted, nothing is created.
        fresh = {**env, "EGRESS_DATA_DIR": str(tmp_path / "fresh")}
        third = subprocess.run(
            [*EGRESS, "serve", "--port", str(port)], env=fresh, capture_output=True, text=True, timeout=120
        )
        assert third.returncode != 0 and "egk_" not in third.stdout + third.stderr
        assert not (tmp_path / "fresh").exists()

        # `egress policy reload` still finds and signals the first gateway.
        reload = subprocess.run([*EGRESS, "policy", "reload"], env=env, capture_output=True, text=True, timeout=60)
        assert reload.returncode == 0, reload.stderr
        assert f"pid {first.proc.pid}" in reload.stdout
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        out = first.stop()
    assert "policy" in out  # the reload was logged by the first gateway


def test_models_on_the_defaults_with_the_official_sdks(tmp_path, monkeypatch):
    monkeypatch.setenv("EGRESS_DATA_DIR", str(tmp_path / "data"))
    config = load_config(None, env={**os.environ, "EGRESS_DATA_DIR": str(tmp_path / "data")})
    gateway = ThreadedGateway(config).start()
    try:
        claude = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-not-needed-for-models")
        claude_ids = [m.id for m in claude.models.list()]
        gpt = openai.OpenAI(base_url=gateway.url + "/v1", api_key="sk-not-needed-for-models")
        gpt_ids = [m.id for m in gpt.models.list()]
    finally:
        gateway.stop()
    # Each client sees the models of the endpoints that answer its API, in its own list shape.
    # (An Anthropic client may also ask for the OpenAI endpoint's models: egress translates
    # Messages to Chat Completions. Nothing translates OpenAI requests to Anthropic's API.)
    assert {"claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-4-5"} <= set(claude_ids)
    assert {"gpt-5.5", "gpt-5.1-codex", "o3"} <= set(gpt_ids)
    assert "gpt-5.5" in claude_ids
    assert not any(m.startswith("claude-") for m in gpt_ids)
    assert len(claude_ids) == len(set(claude_ids)) and len(gpt_ids) == len(set(gpt_ids))
    # Every listed model is one the default endpoints route (listed ⊆ served).
    for model in claude_ids + gpt_ids:
        assert any(e.serves(model) for e in config.providers), model


def test_egress_demo_masks_restores_routes_and_audits(env):
    # A proxy in the environment must not catch the demo's loopback traffic.
    proxied = {**env, "http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    done = subprocess.run([*EGRESS, "demo"], env=proxied, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    sections = re.split(r"^\d\. .*$", done.stdout, flags=re.MULTILINE)
    sent, received, returned, routed, record = (s.strip() for s in sections[1:6])
    secret = re.search(r"AKIA[A-Z2-7]{16}", sent)
    assert secret is not None and secret.group(0) != "AKIAIOSFODNN7EXAMPLE"
    email = re.search(r"[\w.]+@[\w.-]+", sent)
    assert email is not None
    # The provider (the simulator) saw placeholders only; the client got the values back.
    assert secret.group(0) not in received and email.group(0) not in received
    assert re.search(r"EGX_AWS_ACCESS_KEY_ID_\w+", received) and re.search(r"EGX_PII_EMAIL_\w+", received)
    assert secret.group(0) in returned and email.group(0) in returned
    assert "endpoint anthropic (US, region us)" in routed and "forwarded" in routed
    # The audit record names the kinds and rules, never the values.
    assert '"aws-access-key-id": 1' in record and '"pii-email": 1' in record
    assert secret.group(0) not in record and email.group(0) not in record


def test_ctrl_c_stops_cleanly_and_config_warnings_are_logged_at_start(env, tmp_path):
    """Ctrl-C is a clean stop (status 0, no click "Aborted!"); what `config check` warns about is
    said at every start too, so an operator who never ran the check still reads it."""
    config = tmp_path / "egress.yaml"
    config.write_text("policy:\n  engine: builtin\n  data:\n    pii_jurisdictions: [DE]\n")
    port = free_port()
    serve = Serve(env, port, "--config", str(config))
    try:
        serve.wait_for("egress listening on")
        assert any("engine builtin reads no policy.data" in line for line in serve.seen), "".join(serve.seen)
    finally:
        serve.proc.send_signal(signal.SIGINT)
        status = serve.proc.wait(timeout=60)
        while (line := serve.lines.get(timeout=10)) is not None:
            serve.seen.append(line)
    output = "".join(serve.seen)
    assert status == 0, output
    assert "Aborted" not in output and "Traceback" not in output
    assert not (tmp_path / "data" / "egress.pid").exists()
