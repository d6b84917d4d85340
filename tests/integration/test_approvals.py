"""Just-in-time approvals end to end: the real gateway (ThreadedGateway) in front of the upstream
simulator, a policy that sends requests carrying a private key to an approver, decisions taken by
`egress approvals` run as a real subprocess (another process on the shared store), the official
SDKs as clients. The planted private key (a canary) must never reach the approvals table, the
audit, a webhook body or the logs.
"""

from __future__ import annotations

import base64
import getpass
import json
import logging
import os
import secrets
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from egress.app import open_configured_store
from egress.approve import Approval, Approvals
from egress.config import load_config
from egress.gateway.auth import new_key
from egress.store.base import SqlStore
from tests.support.databases import throwaway_postgres
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import Reply, UpstreamSimulator

EGRESS = Path(sys.executable).parent / "egress"
# A generous decision deadline: on a loaded test machine a slow decision must not read as a refusal.
APPROVAL_POLICY = {"data": {"approval": {"kinds": [], "rules": ["private-key-pem"]}}, "timeout_ms": 5000}


def canary_key() -> str:
    lines = "\n".join(base64.b64encode(secrets.token_bytes(48)).decode() for _ in range(6))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{lines}\n-----END RSA PRIVATE KEY-----"


CANARY = canary_key()
# What identifies the canary wherever it might leak: a line of its body.
CANARY_MARK = CANARY.splitlines()[2]


def body(api: str, stream: bool, text: str = "") -> bytes:
    prompt = f"deploy with this key:\n{CANARY}\n{text}"
    if api == "anthropic":
        doc: dict[str, Any] = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": prompt}],
        }
    elif api == "responses":
        doc = {"model": "gpt-4o", "input": prompt}
    else:
        doc = {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}
    if stream:
        doc["stream"] = True
    return json.dumps(doc).encode()


PATHS = {"anthropic": "/v1/messages", "responses": "/v1/responses", "chat": "/v1/chat/completions"}


@dataclass
class Gw:
    gateway: ThreadedGateway
    config_path: Path
    store: SqlStore
    alice: str
    bob: str

    @property
    def url(self) -> str:
        return self.gateway.url

    def headers(self, who: str = "alice") -> dict[str, str]:
        key = self.alice if who == "alice" else self.bob
        return {"content-type": "application/json", "x-egress-key": key, "anthropic-version": "2023-06-01"}

    def post(self, api: str, content: bytes, who: str = "alice", timeout: float = 30) -> httpx.Response:
        return httpx.post(self.url + PATHS[api], content=content, headers=self.headers(who), timeout=timeout)

    def records(self, expect: int = 0, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = [orjson.loads(r.entry.canonical) for r in self.store.iter_audit()]
            if len(rows) >= expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def config_file(tmp_path: Path, sim_url: str, store_url: str | None = None, **approvals: Any) -> Path:
    extra: dict[str, Any] = {"policy": APPROVAL_POLICY, "approvals": {"poll_interval_s": 0.1, **approvals}}
    if store_url:
        extra["store"] = {"url": store_url}
    return write_config(tmp_path, sim_url, **extra)


@contextmanager
def running(path: Path, keys: tuple[str, str] | None = None) -> Iterator[Gw]:
    store = open_configured_store(load_config(path, env=SIM_ENV))
    if keys is None:
        alice, alice_key = new_key("alice", "platform")
        bob, bob_key = new_key("bob", "platform")
        store.create_key(alice_key)
        store.create_key(bob_key)
        keys = (alice, bob)
    gw = ThreadedGateway.from_file(path).start()
    try:
        yield Gw(gw, path, store, *keys)
    finally:
        gw.stop()
        store.close()


@pytest.fixture
def held(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[Gw]:
    """Hold mode with a short keep-alive interval."""
    with running(config_file(tmp_path, upstream.url, mode="hold", ping_interval_s=0.2, timeout_s=60)) as gw:
        yield gw


@pytest.fixture
def refusing(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[Gw]:
    with running(config_file(tmp_path, upstream.url, mode="refuse")) as gw:
        yield gw


def cli(config_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`egress …` as its own process, on the gateway's configuration (and so its store)."""
    return subprocess.run(
        [str(EGRESS), *args, "--config", str(config_path)],
        env={**os.environ, **SIM_ENV, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def pending(store: SqlStore, timeout: float = 10.0) -> Approval:
    """The one pending approval, once the gateway has created it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = store.approval_list(("pending",), None, 10)
        if rows:
            assert len(rows) == 1
            return rows[0]
        time.sleep(0.05)
    raise AssertionError("no pending approval appeared")


def later(fn: Any, *args: Any) -> threading.Thread:
    thread = threading.Thread(target=fn, args=args, daemon=True)
    thread.start()
    return thread


def approve_when_pending(store: SqlStore, approver: str = "sec-lead") -> threading.Thread:
    """Approve (another store connection: the gateway learns of it from the shared store)."""
    return later(lambda: Approvals(store).approve(pending(store).approval_id, approver))


def steps(records: list[dict[str, Any]], approval_id: str) -> list[tuple[str, str]]:
    return [
        (r["approval"]["step"], r["approval"]["actor"])
        for r in records
        if r.get("type") == "approval" and r["approval"]["id"] == approval_id
    ]


def request_record(records: list[dict[str, Any]], approval_id: str) -> dict[str, Any]:
    found = [r for r in records if r.get("type") is None and (r.get("approval") or {}).get("id") == approval_id]
    assert len(found) == 1, found
    return found[0]


def assert_no_canary(gw: Gw, *texts: str) -> None:
    rows = gw.store.approval_list(None, None, 1000)
    assert rows, "expected approvals in the store"
    dumped = [repr(r) for r in rows]
    dumped += [r.entry.canonical.decode() for r in gw.store.iter_audit()]
    for text in [*dumped, *texts]:
        assert CANARY_MARK not in text and "PRIVATE KEY" not in text


# --- hold mode: streams -------------------------------------------------------------------------


def test_held_anthropic_stream_pings_then_completes_after_cli_approval(held: Gw, upstream, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    pings = 0
    approver: threading.Thread | None = None
    result: list[subprocess.CompletedProcess[str]] = []
    lines: list[str] = []
    with httpx.stream(
        "POST", held.url + PATHS["anthropic"], content=body("anthropic", True), headers=held.headers(), timeout=60
    ) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        approval_id = resp.headers["x-egress-approval-id"]
        assert approval_id.startswith("apv_")
        for line in resp.iter_lines():
            lines.append(line)
            if line == "event: ping":
                pings += 1
                if pings == 2 and approver is None:
                    assert upstream.received == [], "nothing may leave before the approval"
                    approver = later(
                        lambda: result.append(
                            cli(held.config_path, "approvals", "approve", approval_id, "--as", "sec-lead")
                        )
                    )
    assert approver is not None
    approver.join(60)
    assert result[0].returncode == 0, result[0].stderr
    assert f"approved {approval_id} as sec-lead" in result[0].stdout
    events = [json.loads(line[5:]) for line in lines if line.startswith("data:")]
    types = [e["type"] for e in events]
    assert types[:2] == ["ping", "ping"]
    assert "message_start" in types and types[-1] == "message_stop"
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text.startswith("Hello there")
    sent = upstream.received[0].body.decode()
    assert CANARY_MARK not in sent  # masked before it left, as the decision said
    records = held.records(expect=5)  # 3 steps, the write-ahead egress record, the request's own
    assert steps(records, approval_id) == [("requested", "egress"), ("approved", "sec-lead"), ("used", "egress")]
    rec = request_record(records, approval_id)
    assert rec["approval"] == {"id": approval_id, "status": "used", "approver": "sec-lead"}
    assert rec["outcome"] == "forwarded" and rec["status"] == 200
    verified = cli(held.config_path, "audit", "verify")
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout + verified.stderr
    assert_no_canary(held, caplog.text, result[0].stdout, result[0].stderr)


def test_anthropic_sdk_stream_through_a_hold(held: Gw) -> None:
    """Pings before message_start: the official SDK skips them and assembles the message."""
    approver = approve_when_pending(held.store)
    client = anthropic.Anthropic(
        base_url=held.url, api_key="sk-ant-client", default_headers={"x-egress-key": held.alice}, max_retries=0
    )
    with client.messages.stream(
        model="claude-sonnet-4-5",
        max_tokens=100,
        messages=[{"role": "user", "content": f"deploy with this key:\n{CANARY}\n"}],
    ) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_message()
    approver.join(10)
    assert kinds[0] == "message_start"
    assert final.content[0].text.startswith("Hello there")


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_openai_streams_through_a_hold_with_comment_pings(held: Gw, api: str) -> None:
    """The raw stream carries `: ping` comments while held; the official SDK ignores them."""
    with httpx.stream("POST", held.url + PATHS[api], content=body(api, True), headers=held.headers(), timeout=60) as r:
        approval_id = r.headers["x-egress-approval-id"]
        raw: list[str] = []
        for line in r.iter_lines():
            raw.append(line)
            if line == ": ping" and raw.count(": ping") == 2:
                Approvals(held.store).deny(approval_id, "sec-lead", "not this one")
        assert r.status_code == 200
    assert raw.count(": ping") >= 2
    assert not any(line.startswith("event: ping") for line in raw)
    error = next(json.loads(line[5:]) for line in raw if line.startswith("data:"))
    assert "denied" in json.dumps(error) and "sec-lead" in json.dumps(error)

    approver = approve_when_pending(held.store)
    client = openai.OpenAI(
        base_url=held.url + "/v1", api_key="sk-client", default_headers={"x-egress-key": held.alice}, max_retries=0
    )
    prompt = f"deploy with this key:\n{CANARY}\n"
    if api == "responses":
        events = list(client.responses.create(model="gpt-4o", input=prompt, stream=True))
        assert events[-1].type == "response.completed"
    else:
        chunks = list(
            client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": prompt}], stream=True)
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("I'm unable")
    approver.join(10)


def test_held_stream_is_denied_on_timeout(upstream: UpstreamSimulator, tmp_path: Path) -> None:
    path = config_file(tmp_path, upstream.url, mode="hold", ping_interval_s=0.2, timeout_s=1.0)
    with running(path) as gw:
        with httpx.stream(
            "POST", gw.url + PATHS["anthropic"], content=body("anthropic", True), headers=gw.headers(), timeout=30
        ) as resp:
            approval_id = resp.headers["x-egress-approval-id"]
            lines = list(resp.iter_lines())
        assert upstream.received == []
        assert lines.count("event: ping") >= 2
        assert "event: error" in lines
        error = json.loads(lines[lines.index("event: error") + 1][5:])
        assert error["error"]["type"] == "permission_error"
        assert error["error"]["details"]["error_code"] == "approval_expired"
        assert approval_id in error["error"]["message"]
        records = gw.records(expect=3)
        assert steps(records, approval_id) == [("requested", "egress"), ("expired", "egress")]
        rec = request_record(records, approval_id)
        assert rec["approval"]["status"] == "expired" and rec["error_code"] == "approval_expired"
        assert rec["outcome"] == "refused"
        late = cli(path, "approvals", "approve", approval_id)
        assert late.returncode == 1 and "already expired" in late.stderr


def test_held_plain_request_denied_by_cli(held: Gw, upstream) -> None:
    answers: list[httpx.Response] = []
    waiting = later(lambda: answers.append(held.post("anthropic", body("anthropic", False))))
    approval = pending(held.store)
    denied = cli(held.config_path, "approvals", "deny", approval.approval_id, "--note", "use the vault")
    assert denied.returncode == 0, denied.stderr
    waiting.join(30)
    resp = answers[0]
    assert resp.status_code == 403
    error = resp.json()
    assert error["type"] == "error" and error["error"]["details"]["error_code"] == "approval_denied"
    assert f"cli:{getpass.getuser()} denied this request (approval {approval.approval_id})" in error["error"]["message"]
    assert "use the vault" in error["error"]["message"]
    assert upstream.received == []
    again = cli(held.config_path, "approvals", "approve", approval.approval_id)
    assert again.returncode == 1 and "already denied by cli:" in again.stderr
    unknown = cli(held.config_path, "approvals", "deny", "apv_doesnotexist")
    assert unknown.returncode == 1 and "no approval with id apv_doesnotexist" in unknown.stderr


def test_a_client_that_goes_away_while_held_cancels_its_approval(held: Gw) -> None:
    with httpx.stream(
        "POST", held.url + PATHS["anthropic"], content=body("anthropic", True), headers=held.headers(), timeout=30
    ) as resp:
        approval_id = resp.headers["x-egress-approval-id"]
        for line in resp.iter_lines():
            if line == "event: ping":
                break
    deadline = time.monotonic() + 10
    while held.store.approval_get(approval_id).status != "cancelled":
        assert time.monotonic() < deadline, "the approval was not cancelled"
        time.sleep(0.05)
    records = held.records(expect=3)
    assert ("cancelled", "egress") in steps(records, approval_id)
    assert request_record(records, approval_id)["outcome"] == "cancelled"


def test_an_upstream_error_after_a_held_stream_started_is_an_in_stream_error(held: Gw, upstream) -> None:
    upstream.enqueue(
        Reply(
            status=400,
            headers={"content-type": "application/json"},
            chunks=[b'{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long"}}'],
        )
    )
    approver = approve_when_pending(held.store)
    with httpx.stream(
        "POST", held.url + PATHS["anthropic"], content=body("anthropic", True), headers=held.headers(), timeout=30
    ) as resp:
        assert resp.status_code == 200  # sent before the upstream was asked
        lines = list(resp.iter_lines())
    approver.join(10)
    error = json.loads(lines[lines.index("event: error") + 1][5:])
    assert error["error"]["type"] == "invalid_request_error"
    assert "the provider answered 400: prompt is too long" in error["error"]["message"]
    (rec,) = [r for r in held.records(expect=5) if r.get("type") is None]  # with its egress record
    assert rec["upstream_status"] == 400 and rec["outcome"] == "failed" and rec["approval"]["status"] == "used"


def test_a_store_failure_while_approving_fails_closed(refusing: Gw, upstream, monkeypatch) -> None:
    approvals = refusing.gateway.app.pipeline.approvals.desk.approvals

    def broken(*args: Any) -> list[str]:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(approvals._store, "approval_retry_candidates", broken)
    resp = refusing.post("anthropic", body("anthropic", False))
    assert resp.status_code == 500 and resp.json()["error"]["details"]["error_code"] == "stage_failed"
    assert upstream.received == []
    (rec,) = refusing.records(expect=1)
    assert rec["error_stage"] == "approve" and rec["outcome"] == "refused"


# --- refuse mode: approve, then an identical retry passes once -----------------------------------


def refused_id(resp: httpx.Response) -> str:
    assert resp.status_code == 403
    error = resp.json()["error"]
    approval_id = resp.headers["x-egress-approval-id"]
    assert error["details"]["error_code"] == "approval_required"
    assert f"/admin/approvals/{approval_id}" in error["message"]
    return approval_id


def test_refuse_then_approve_then_identical_retry_passes_once(refusing: Gw, upstream) -> None:
    gw = refusing
    content = body("anthropic", False)
    approval_id = refused_id(gw.post("anthropic", content))
    assert upstream.received == []
    listed = cli(gw.config_path, "approvals", "list", "--json")
    assert listed.returncode == 0
    assert [json.loads(line)["approval_id"] for line in listed.stdout.splitlines()] == [approval_id]
    table = cli(gw.config_path, "approvals", "list")
    assert approval_id in table.stdout and "alice" in table.stdout and "secret" in table.stdout
    approved = cli(gw.config_path, "approvals", "approve", approval_id)
    assert approved.returncode == 0, approved.stderr
    # Not for another user with the same content, nor for the same user with other content.
    refused_id(gw.post("anthropic", content, who="bob"))
    refused_id(gw.post("anthropic", body("anthropic", False, "and one more line")))
    ok = gw.post("anthropic", content)
    assert ok.status_code == 200 and ok.json()["content"][0]["text"].startswith("Hello there")
    assert len(upstream.received) == 1
    # Once: the next identical retry needs a new approval.
    again = refused_id(gw.post("anthropic", content))
    assert again != approval_id
    records = gw.records(expect=12)  # and the one forwarded request's write-ahead egress record
    assert steps(records, approval_id) == [
        ("requested", "egress"),
        ("approved", f"cli:{getpass.getuser()}"),
        ("used", "egress"),
    ]
    passed = request_record([r for r in records if r["status"] == 200], approval_id)
    assert passed["approval"]["status"] == "used"
    everything = cli(gw.config_path, "approvals", "list", "--all", "--json")
    statuses = {json.loads(line)["approval_id"]: json.loads(line)["status"] for line in everything.stdout.splitlines()}
    assert statuses[approval_id] == "used" and statuses[again] == "pending"
    exported = cli(gw.config_path, "audit", "export", "--approval", approval_id)
    lines = [json.loads(line) for line in exported.stdout.splitlines()[1:] if '"record"' in line]
    assert [r["record"]["outcome"] for r in lines] == [
        "approval_requested",
        "refused",
        "approval_approved",
        "approval_used",
        "forwarded",
    ]
    csv_rows = cli(gw.config_path, "audit", "export", "--format", "csv", "--approval", approval_id)
    assert csv_rows.returncode == 0 and len(csv_rows.stdout.splitlines()) == 1 + 5
    tail = cli(gw.config_path, "audit", "tail", "-n", "20")  # approval steps have no latency of their own
    assert tail.returncode == 0 and "approval_used" in tail.stdout, tail.stderr
    assert_no_canary(gw, exported.stdout, csv_rows.stdout)


def test_an_approval_unused_within_its_ttl_does_not_pass(refusing: Gw) -> None:
    content = body("anthropic", False)
    approval_id = refused_id(refusing.post("anthropic", content))
    Approvals(refusing.store, retry_ttl_s=0.3).approve(approval_id, "sec-lead")
    time.sleep(0.5)
    refused_id(refusing.post("anthropic", content))
    assert refusing.store.approval_get(approval_id).status in ("approved", "expired")
    Approvals(refusing.store).expire_overdue()
    assert refusing.store.approval_get(approval_id).status == "expired"


def test_racing_cli_approvers_exactly_one_wins(refusing: Gw) -> None:
    approval_id = refused_id(refusing.post("anthropic", body("anthropic", False)))
    procs = [
        subprocess.Popen(
            [str(EGRESS), "approvals", verb, approval_id, "--as", f"{verb}-{i}", "--config", str(refusing.config_path)],
            env={**os.environ, **SIM_ENV},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, verb in enumerate(["approve", "deny", "approve", "deny"])
    ]
    outcomes = [(p.wait(120), p.stdout.read() if p.stdout else "", p.stderr.read() if p.stderr else "") for p in procs]
    winners = [o for o in outcomes if o[0] == 0]
    assert len(winners) == 1, outcomes
    assert all(o[0] == 1 and "already" in o[2] for o in outcomes if o[0] != 0)
    final = refusing.store.approval_get(approval_id)
    records = refusing.records(expect=3)
    decided = [s for s in steps(records, approval_id) if s[0] in ("approved", "denied")]
    assert decided == [(final.status, final.decided_by)]


# --- several gateways on one store ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_approval_made_on_one_gateway_is_used_on_another(upstream, tmp_path: Path, kind: str) -> None:
    with shared_store_url(kind, tmp_path) as store_url:
        path = config_file(tmp_path, upstream.url, store_url, mode="refuse")
        with running(path) as a, running(path, keys=(a.alice, a.bob)) as b:
            content = body("anthropic", False)
            approval_id = refused_id(a.post("anthropic", content))
            assert cli(path, "approvals", "approve", approval_id, "--as", "sec-lead").returncode == 0
            ok = b.post("anthropic", content)
            assert ok.status_code == 200
            leftover = refused_id(a.post("anthropic", content))  # used on B: gone for A too
            Approvals(a.store).deny(leftover, "sec-lead")
        # A held request on one gateway is released by a decision another process takes.
        (tmp_path / "held").mkdir()
        held_path = config_file(tmp_path / "held", upstream.url, store_url, mode="hold", ping_interval_s=0.2)
        with running(held_path) as c:
            approver = approve_when_pending(c.store)
            assert c.post("anthropic", body("anthropic", False)).status_code == 200
            approver.join(10)


@contextmanager
def shared_store_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    with throwaway_postgres() as url:
        yield url


# --- webhook --------------------------------------------------------------------------------------


class Receiver:
    """A loopback webhook receiver that keeps every body it is sent."""

    def __init__(self) -> None:
        bodies: list[bytes] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                bodies.append(self.rfile.read(int(self.headers["content-length"])))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        later(self.server.serve_forever)

    def wait(self, n: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.bodies) < n:
            assert time.monotonic() < deadline, "no webhook arrived"
            time.sleep(0.05)
        return [json.loads(b) for b in self.bodies]

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.parametrize("fmt", ["generic", "slack"])
def test_webhook_notices_carry_no_content(upstream, tmp_path: Path, fmt: str, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver()
    try:
        path = config_file(tmp_path, upstream.url, mode="refuse", webhook_url=receiver.url, webhook_format=fmt)
        with running(path) as gw:
            approval_id = refused_id(gw.post("anthropic", body("anthropic", False)))
            (notice,) = receiver.wait()
            url = f"http://127.0.0.1:8080/admin/approvals/{approval_id}"
            if fmt == "generic":
                assert notice["approval_id"] == approval_id and notice["url"] == url
                assert notice["user"] == "alice" and notice["team"] == "platform"
                assert notice["kinds"] == {"secret": 1} and notice["rules"] == {"private-key-pem": 1}
                assert notice["endpoints"] == ["sim-anthropic"] and notice["model"] == "claude-sonnet-4-5"
                assert notice["expires_at"] > time.time()
            else:
                assert approval_id in notice["text"]
                buttons = [e for b in notice["blocks"] if b["type"] == "actions" for e in b["elements"]]
                assert buttons[0]["type"] == "button" and buttons[0]["url"] == url
            assert_no_canary(gw, receiver.bodies[0].decode(), caplog.text)
    finally:
        receiver.close()


def test_a_failing_webhook_never_blocks_the_hold(upstream, tmp_path: Path) -> None:
    path = config_file(
        tmp_path, upstream.url, mode="hold", webhook_url="http://127.0.0.1:9/nowhere", webhook_timeout_s=0.5
    )
    with running(path) as gw:
        approver = approve_when_pending(gw.store)
        assert gw.post("anthropic", body("anthropic", False)).status_code == 200
        approver.join(10)
