"""Session recording end to end: official SDKs -> egress (real detection, the bundled Rego policy
with the `record_payload` obligation) -> the upstream simulator, which plays a model that cites
the placeholders it was sent.

Checked: the recording holds exactly the bytes the upstream received and sent back (masked), and
the canary secrets planted in the prompt appear in none of: the recorded payloads, the raw
database file, `egress audit export`, `egress audit replay` (text, --raw, --json), egress's logs;
the client still gets its values restored. Without the obligation nothing is recorded.
Retention deletes payloads and `egress audit verify` still passes; tampered or swapped
ciphertexts are refused (exit 2); the PostgreSQL store records and replays the same way."""

from __future__ import annotations

import csv
import io
import json
import logging
import random
import re
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from click.testing import CliRunner, Result

from egress.app import open_configured_store
from egress.cli.main import main
from egress.config import load_config
from egress.core.exchange import Api
from egress.gateway.auth import new_key
from egress.recording.keys import load_recording_keys
from egress.recording.recordings import Recordings, Replay
from egress.store.base import SqlStore
from egress.wire.apis import answer_text
from tests.integration.test_agents_masking import fresh_secrets
from tests.integration.test_masking import anthropic_answer, chat_answer, responses_answer
from tests.support.databases import throwaway_postgres
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config
from tests.support.simulator import Received, Reply, UpstreamSimulator, assemble_chat, split_random

PLACEHOLDER = re.compile(r"EGX_[A-Z0-9_]+_[a-z]{13}")
RECORD = {"data": {"obligations": ["record_payload"]}}


def canaries() -> dict[str, str]:
    """An AWS key pair and a GitHub token, fresh, each found by egress's real detectors."""
    found = fresh_secrets()
    return {name: found[name][0] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN")}


def prompt(v: dict[str, str]) -> str:
    return "Deploy with these settings:\n" + "\n".join(f"{name}={value}" for name, value in v.items())


@dataclass
class Gateway:
    running: ThreadedGateway
    key: str
    store: SqlStore
    config: Path

    @property
    def url(self) -> str:
        return self.running.url

    def cli(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--config", str(self.config)], env=SIM_ENV, catch_exceptions=False)

    def record(self, timeout: float = 5.0) -> dict[str, Any]:
        """The request's own audit record (the only one besides its write-ahead egress record),
        once written."""
        deadline = time.monotonic() + timeout
        while True:
            rows = [json.loads(r.entry.canonical) for r in self.store.iter_audit()]
            own = [r for r in rows if r.get("type") != "egress"]
            if own or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert len(own) == 1
        return own[0]

    def replay(self, request_id: str, timeout: float = 5.0) -> Replay:
        keys = load_recording_keys(load_config(self.config, env=SIM_ENV).recording_key_file)
        deadline = time.monotonic() + timeout
        while (found := Recordings(self.store, keys).replay(request_id)) is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert found is not None, "nothing was recorded"
        return found


def start(tmp_path: Path, upstream: UpstreamSimulator, **extra: Any) -> Iterator[Gateway]:
    path = write_config(tmp_path, upstream.url, **extra)
    gw = ThreadedGateway.from_file(path)
    store = open_configured_store(load_config(path, env=SIM_ENV))
    secret, key = new_key("alice", "platform")
    store.create_key(key)
    gw.start()
    try:
        yield Gateway(gw, secret, store, path)
    finally:
        gw.stop()
        store.close()


@pytest.fixture
def recording(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[Gateway]:
    """A gateway whose policy obliges recording every request."""
    yield from start(tmp_path, upstream, policy=RECORD)


# --- the scripted model and the clients ------------------------------------------------------------

STREAM_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


def citing(api: str, stream: bool, seen: list[Received]) -> Reply:
    """A model that answers with every placeholder it was sent (and a tool call citing the first)."""
    make = {"anthropic": anthropic_answer, "chat": chat_answer, "responses": responses_answer}[api]

    def build(received: Received) -> list[bytes]:
        seen.append(received)
        found = list(dict.fromkeys(PLACEHOLDER.findall(received.body.decode())))
        wire = make("Using " + ", ".join(found) + ".", f"deploy --key {found[0]}")
        if stream:
            return split_random(wire, random.Random(len(received.body)))
        assert api == "chat", "whole answers are scripted for Chat Completions only"
        return [json.dumps(assemble_chat(wire)).encode()]

    return Reply(headers=STREAM_HEADERS if stream else {"content-type": "application/json"}, build=build)


def ask(api: str, url: str, key: str, text: str) -> str:
    """The answer's text as the SDK hands it to the application."""
    headers = {"x-egress-key": key}
    if api == "anthropic":
        claude = anthropic.Anthropic(base_url=url, api_key="sk-ant-client", default_headers=headers, max_retries=0)
        with claude.messages.stream(
            model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": text}]
        ) as s:
            return s.get_final_message().content[0].text
    oai = openai.OpenAI(base_url=url + "/v1", api_key="sk-client", default_headers=headers, max_retries=0)
    if api == "responses":
        with oai.responses.stream(model="gpt-5.5-codex", input=text, store=False) as s:
            return s.get_final_response().output_text
    completion = oai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
    return completion.choices[0].message.content or ""


API_OF = {"anthropic": Api.ANTHROPIC_MESSAGES, "responses": Api.OPENAI_RESPONSES, "chat": Api.OPENAI_CHAT}


def assert_clean(data: str | bytes, v: dict[str, str], where: str) -> None:
    text = data.decode("latin-1") if isinstance(data, bytes) else data
    leaked = [name for name, value in v.items() if value in text]
    assert not leaked, f"{', '.join(leaked)} found in {where}"


# --- recording ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("api", "stream"), [("anthropic", True), ("responses", True), ("chat", False)])
def test_recordings_hold_what_the_upstream_saw_and_never_a_canary(recording, upstream, caplog, tmp_path, api, stream):
    caplog.set_level(logging.DEBUG)
    v = canaries()
    seen: list[Received] = []
    upstream.enqueue(citing(api, stream, seen))
    answer = ask(api, recording.url, recording.key, prompt(v))
    for value in v.values():
        assert value in answer  # the client's answer is restored ...
    (sent_upstream,) = seen

    record = recording.record()
    assert record["v"] == 3 and record["recorded"] is True and record["decision"]["obligations"] == ["record_payload"]
    assert record["findings"]["kinds"]["secret"] == 3
    rid = record["request_id"]
    replay = recording.replay(rid)
    assert replay.digests_match and not replay.expired and replay.stream is stream and replay.status == 200
    # ... the recording holds what the upstream got and what it sent, masked.
    assert replay.sent == sent_upstream.body
    placeholders = list(dict.fromkeys(PLACEHOLDER.findall(replay.sent.decode())))
    assert len(placeholders) == 3
    assert replay.masked_kinds == {"secret": 3}
    assert replay.endpoint == ("sim-anthropic" if api == "anthropic" else "sim-openai")
    shown = answer_text(API_OF[api], replay.received, replay.stream)
    assert shown == "Using " + ", ".join(placeholders) + "."
    assert answer == shown.replace(placeholders[0], v["AWS_ACCESS_KEY_ID"]).replace(
        placeholders[1], v["AWS_SECRET_ACCESS_KEY"]
    ).replace(placeholders[2], v["GITHUB_TOKEN"])
    assert_clean(replay.sent, v, "the recorded sent body")
    assert_clean(replay.received, v, "the recorded answer")

    text = recording.cli("audit", "replay", rid)
    assert text.exit_code == 0, text.output
    assert "payloads match the digests in the audit chain" in text.output and "secret x3" in text.output
    assert placeholders[2] in text.output and "alice" in text.output
    raw = recording.cli("audit", "replay", rid, "--raw")
    assert raw.exit_code == 0 and replay.received.decode() in raw.output
    as_json = recording.cli("audit", "replay", rid, "--json")
    doc = json.loads(as_json.output)
    assert doc["digests_match"] and doc["received_text"] == shown and doc["masked_kinds"] == {"secret": 3}
    assert doc["audit"]["jurisdiction"] == "US" and doc["audit"]["decision"]["obligations"] == ["record_payload"]

    recording.running.stop()  # everything written, the chain's head signed
    exported = recording.cli("audit", "export")
    assert exported.exit_code == 0 and rid in exported.output
    as_csv = recording.cli("audit", "export", "--format", "csv")
    # The request's write-ahead egress record, then its own record.
    egress_row, csv_row = csv.DictReader(io.StringIO(as_csv.output))
    assert egress_row["outcome"] == "egress" and egress_row["request_id"] == rid
    assert csv_row["recorded"] == "True" and csv_row["response_sha256"] == record["response_sha256"]
    verified = recording.cli("audit", "verify")
    assert verified.exit_code == 0 and verified.output.startswith("OK: 2 records verified"), verified.output
    db = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("egress.db*"))
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("egress", "uvicorn"))
    for data, where in (
        (db, "the database file"),
        (exported.output, "the audit export"),
        (as_csv.output, "the CSV export"),
        (text.output, "replay"),
        (raw.output, "replay --raw"),
        (as_json.output, "replay --json"),
        (logged, "egress's logs"),
    ):
        assert_clean(data, v, where)
    # Sealed at rest: not even the placeholders are readable in the database file.
    assert not PLACEHOLDER.search(db.decode("latin-1"))


def test_without_the_obligation_nothing_is_recorded(gateway, upstream):
    seen: list[Received] = []
    upstream.enqueue(citing("anthropic", True, seen))
    ask("anthropic", gateway.url, gateway.key, prompt(canaries()))
    (record,) = gateway.audit(1)
    assert record["recorded"] is False and record["response_sha256"] is None
    assert gateway.store.get_recording(record["request_id"]) is None
    config = str(gateway.gateway.config.data_dir.parent / "egress.yaml")
    gateway.gateway.config.recording_key_file.unlink()  # a request never recorded needs no key to say so
    result = CliRunner().invoke(main, ["audit", "replay", record["request_id"], "--config", config], env=SIM_ENV)
    assert result.exit_code == 1 and "was not recorded" in result.output
    missing = CliRunner().invoke(main, ["audit", "replay", "req_nope", "--config", config], env=SIM_ENV)
    assert missing.exit_code == 1 and "no request req_nope" in missing.output


def _record_next(gw: Gateway, upstream: UpstreamSimulator) -> str:
    count = len(list(gw.store.iter_audit()))
    upstream.enqueue(citing("anthropic", True, []))
    ask("anthropic", gw.url, gw.key, prompt(canaries()))
    deadline = time.monotonic() + 5
    while len(rows := list(gw.store.iter_audit())) <= count and time.monotonic() < deadline:
        time.sleep(0.02)
    rid = json.loads(rows[-1].entry.canonical)["request_id"]
    gw.replay(rid)
    return rid


def test_retention_deletes_payloads_and_the_chain_still_verifies(recording, upstream, tmp_path):
    rid = _record_next(recording, upstream)
    recording.running.stop()
    db = sqlite3.connect(tmp_path / "data" / "egress.db")
    db.execute("UPDATE recordings SET expires_at = ? WHERE request_id = ?", (time.time() - 1, rid))
    db.commit()
    db.close()
    # A restart purges expired payloads before the first request (off the event loop).
    restarted = ThreadedGateway.from_file(recording.config).start()
    try:
        deadline = time.monotonic() + 5
        while recording.store.get_recording(rid).sent is not None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        restarted.stop()
    row = recording.store.get_recording(rid)
    assert row is not None and row.sent is None and row.received is None
    verified = recording.cli("audit", "verify")
    assert verified.exit_code == 0 and verified.output.startswith("OK: 2 records verified"), verified.output  # with its egress record
    replayed = recording.cli("audit", "replay", rid)
    assert replayed.exit_code == 1 and "expired" in replayed.output
    assert recording.cli("audit", "recording-key", "prune").output.startswith("no key to drop")


def test_tampered_or_swapped_ciphertexts_are_refused(recording, upstream, tmp_path):
    first, second = _record_next(recording, upstream), _record_next(recording, upstream)
    recording.running.stop()
    db = sqlite3.connect(tmp_path / "data" / "egress.db")
    db.execute(
        "UPDATE recordings SET received = (SELECT received FROM recordings WHERE request_id = ?) WHERE request_id = ?",
        (second, first),
    )
    edited = bytearray(db.execute("SELECT sent FROM recordings WHERE request_id = ?", (second,)).fetchone()[0])
    edited[40] ^= 0x20
    db.execute("UPDATE recordings SET sent = ? WHERE request_id = ?", (bytes(edited), second))
    db.commit()
    db.close()
    swapped = recording.cli("audit", "replay", first)
    assert swapped.exit_code == 2 and "received payload does not open" in swapped.output
    altered = recording.cli("audit", "replay", second)
    assert altered.exit_code == 2 and "sent payload does not open" in altered.output


def test_rotation_keeps_older_recordings_readable(recording, upstream):
    before = _record_next(recording, upstream)
    rotated = recording.cli("audit", "recording-key", "rotate")
    assert rotated.exit_code == 0 and "1 older key(s) kept" in rotated.output
    assert recording.cli("audit", "replay", before).exit_code == 0
    listed = recording.cli("audit", "recording-key", "list")
    assert listed.output.count("rk_") == 2
    # The running gateway seals with the key it started with until restarted: still readable.
    after = _record_next(recording, upstream)
    assert recording.cli("audit", "replay", after).exit_code == 0
    assert recording.cli("audit", "recording-key", "prune").output.startswith("no key to drop")


@pytest.mark.postgres
def test_postgres_store_records_and_replays(upstream, tmp_path):
    v = canaries()
    with throwaway_postgres() as url:
        for gw in start(tmp_path, upstream, policy=RECORD, store={"url": url}):
            upstream.enqueue(citing("responses", True, []))
            ask("responses", gw.url, gw.key, prompt(v))
            rid = gw.record()["request_id"]
            replay = gw.replay(rid)
            assert replay.digests_match and len(PLACEHOLDER.findall(replay.sent.decode())) >= 3
            assert_clean(replay.sent + replay.received, v, "the recording")
            shown = gw.cli("audit", "replay", rid, "--json")
            assert shown.exit_code == 0 and json.loads(shown.output)["digests_match"]
            assert_clean(shown.output, v, "replay --json")
            gw.store.purge_recordings(time.time() + 365 * 86400)
            assert gw.cli("audit", "replay", rid).exit_code == 1
            assert gw.cli("audit", "verify").exit_code == 0


def test_a_translated_request_records_what_the_chat_endpoint_saw(upstream, tmp_path):
    """An Anthropic client answered by a Chat-only endpoint: the recording holds the translated
    Chat body and the Chat stream (its text shown from Chat deltas); the client gets Anthropic events."""
    own = {
        "name": "own",
        "api": "openai-chat",
        "base_url": upstream.url + "/v1",
        "models": ["*"],
        "credentials": {"env": "SIM_OPENAI_KEY"},
        "operator": "Our own server",
        "jurisdiction": "self",
        "region": "self",
        "retention_days": 0,
        "trains_on_api_data": False,
        "dpa": True,
    }
    v = canaries()
    seen: list[Received] = []
    for gw in start(tmp_path, upstream, policy=RECORD, providers=[own]):
        upstream.enqueue(citing("chat", True, seen))
        answer = ask("anthropic", gw.url, gw.key, prompt(v))
        assert all(value in answer for value in v.values())
        record = gw.record()
        assert record["translated_from"] == "anthropic.messages" and record["endpoint"] == "own"
        replay = gw.replay(record["request_id"])
        assert replay.digests_match and replay.api == "openai.chat_completions"
        assert replay.upstream_path == "/chat/completions" and replay.sent == seen[0].body
        assert json.loads(replay.sent)["messages"][-1]["role"] == "user"  # a Chat body, not Messages
        placeholders = list(dict.fromkeys(PLACEHOLDER.findall(replay.sent.decode())))
        assert answer_text(Api.OPENAI_CHAT, replay.received, True) == "Using " + ", ".join(placeholders) + "."
        assert_clean(replay.sent + replay.received, v, "the recording")
