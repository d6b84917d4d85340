"""`logging.format: json` and `logging.access_log`: `egress serve`'s log is one JSON object per
line, with an access line per request (request id, user, team, decision, outcome), and a canary
secret sent in a request's body, headers and query string appears in none of it, whatever
becomes of the request (forwarded masked, refused as malformed, refused for a bad key).
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson

from tests.integration.test_serve_cli import EGRESS, env, run, wait_ready  # noqa: F401 - the fixture
from tests.support.gateway import free_port, write_config
from tests.support.simulator import UpstreamSimulator

__all__ = ["env"]

CANARY_KEY = "AKIAQYLPMN5HHHFPZAM2"  # shaped like an AWS key: found and masked
CANARY = "canary-7c1e5b0f9a2d"  # a plain marker in headers, query and a malformed body


def serve(env: dict, config: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*EGRESS, "serve", "--config", str(config), "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,  # the banner (agent setup lines) is not the log
            stderr=sink,
        )
    url = f"http://127.0.0.1:{port}"
    wait_ready(url, proc)
    return proc, url


def send(url: str, key: str) -> None:
    sdk = anthropic.Anthropic(
        base_url=url,
        api_key=f"sk-ant-{CANARY}",
        default_headers={"x-egress-key": key, "x-canary": CANARY},
        max_retries=0,
    )
    sdk.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=16,
        messages=[{"role": "user", "content": f"deploy with {CANARY_KEY} ({CANARY})"}],
        extra_query={"canary": CANARY, "key": CANARY},
    )
    with httpx.Client(base_url=url, timeout=10) as client:
        # Malformed JSON quoting the canary; a wrong gateway key that is the canary.
        r = client.post(
            "/v1/messages",
            content=f'{{"model": "{CANARY}", '.encode(),
            headers={"x-egress-key": key, "content-type": "application/json"},
        )
        assert r.status_code == 400
        r = client.post(f"/v1/messages?key={CANARY}", json={"model": "claude-x"}, headers={"x-egress-key": CANARY})
        assert r.status_code == 401


def lines_of(log: Path) -> list[dict[str, Any]]:
    text = log.read_bytes()
    assert text.strip(), "nothing was logged"
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]  # every line is JSON


def test_json_log_with_access_lines_never_holds_the_canary(env, tmp_path, sim: UpstreamSimulator):  # noqa: F811
    config = write_config(tmp_path, sim.url, logging={"format": "json", "access_log": True})
    key = run(["keys", "create", "--user", "erin", "--team", "payments", "--config", str(config)], env).stdout.strip()
    log = tmp_path / "egress.log"
    proc, url = serve(env, config, log)
    try:
        send(url, key)
        time.sleep(0.3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    raw = log.read_bytes()
    assert CANARY.encode() not in raw and CANARY_KEY.encode() not in raw
    assert key.encode() not in raw
    lines = lines_of(log)
    access = [line for line in lines if line["logger"] == "egress.access"]
    assert len(access) == 3
    ok = access[0]
    assert ok["request_id"].startswith("egr_")
    assert (ok["user"], ok["team"], ok["outcome"], ok["status"], ok["endpoint"]) == (
        "erin", "payments", "forwarded", 200, "sim-anthropic"
    )  # fmt: skip
    assert ok["decision"] in ("mask", "allow")
    assert [a["outcome"] for a in access[1:]] == ["refused", "refused"]
    assert access[2]["user"] is None  # the wrong key identified nobody
    # The server's own lines (uvicorn's included) are JSON too.
    assert any(line["logger"].startswith("uvicorn") for line in lines)
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
