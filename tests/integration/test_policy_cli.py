"""`egress policy test | eval | reload` as separate processes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import anthropic

from tests.integration.test_serve_cli import env, run, start_serve  # noqa: F401 - `env` is a fixture
from tests.integration.test_sovereign_routing import AWS_KEY, EMAIL, providers
from tests.support.gateway import SIM_ENV, write_config
from tests.support.simulator import UpstreamSimulator

REQUEST = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 100,
    "system": "You are Claude Code.",
    "messages": [{"role": "user", "content": f"deploy with {AWS_KEY}, then mail {EMAIL}"}],
}


def config(tmp_path: Path, sim_url: str, **extra) -> Path:
    urls = {"us": sim_url, "eu": sim_url, "own": sim_url}
    return write_config(tmp_path, sim_url, providers=providers(urls), **extra)


def test_policy_test_runs_the_bundled_rego_tests(env):  # noqa: F811
    done = run(["policy", "test", "-v"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS" in done.stdout and "test_pii_rerouted_away_from_us" in done.stdout
    assert " 0 failed" in done.stdout


def test_policy_test_fails_on_a_failing_test(env, tmp_path):  # noqa: F811
    folder = tmp_path / "pol"
    folder.mkdir()
    (folder / "p.rego").write_text('package egress\nimport rego.v1\ndecision := {"action": "allow", "endpoints": []}\n')
    (folder / "p_test.rego").write_text(
        "package egress_test\nimport rego.v1\nimport data.egress\n"
        'test_allows if { egress.decision.action == "allow" }\n'
        'test_blocks if { egress.decision.action == "block" }\n'
    )
    done = run(["policy", "test", str(folder)], env)
    assert done.returncode == 1
    assert "FAIL" in done.stdout and "test_blocks" in done.stdout and "1 passed, 1 failed" in done.stdout


def test_policy_test_reports_a_broken_policy(env, tmp_path):  # noqa: F811
    bad = tmp_path / "bad.rego"
    bad.write_text("package egress\ndecision := {\n")
    done = run(["policy", "test", str(bad)], env)
    assert done.returncode == 2 and "bad.rego:2" in done.stderr


def test_policy_eval_dry_runs_a_request(env, tmp_path):  # noqa: F811
    path = config(tmp_path, "http://127.0.0.1:9", masking={"kinds": ["secret"]})
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))
    done = run(["policy", "eval", "--config", str(path), "--request", str(request), "--team", "eng", "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["api"] == "anthropic.messages"
    assert {f["rule"] for f in report["findings"]} == {"aws-access-key-id", "pii-email"}
    assert report["input"]["findings"]["kinds"] == {"secret": 1, "pii": 1}
    assert report["input"]["subject"] == {"user": "cli", "team": "eng"}
    assert report["decision"]["action"] == "reroute" and report["endpoint"] == "eu-cloud"
    assert AWS_KEY not in done.stdout and EMAIL not in done.stdout  # previews only
    # Tables for people, the same facts.
    table = run(["policy", "eval", "--config", str(path), "--request", str(request)], env)
    assert table.returncode == 0 and "reroute" in table.stdout and "eu-cloud" in table.stdout
    # Proprietary code goes to the self-hosted endpoint, through translation.
    own = run(
        ["policy", "eval", "--config", str(path), "--request", str(request), "--classification", "proprietary", "--json"],
        env,
    )
    report = json.loads(own.stdout)
    assert report["endpoint"] == "own" and report["translated"] is True


def test_policy_eval_of_a_refused_request(env, tmp_path):  # noqa: F811
    path = config(tmp_path, "http://127.0.0.1:9", policy={"data": {"pii_jurisdictions": ["JP"]}}, masking={"kinds": ["secret"]})
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))
    done = run(["policy", "eval", "--config", str(path), "--request", str(request), "--json"], env)
    report = json.loads(done.stdout)
    assert report["decision"]["action"] == "block" and report["endpoint"] is None
    assert done.returncode == 3 and report["outcome"] == "blocked"


def _decision_rego(tmp_path: Path, decision: str) -> Path:
    rego = tmp_path / "decide.rego"
    rego.write_text(f"package egress\nimport rego.v1\ndecision := {decision}\n")
    return rego


def test_policy_eval_exit_status_says_what_the_gateway_would_do(env, tmp_path):  # noqa: F811
    """0 forwarded, 3 blocked, 4 held for approval, 5 refused, 2 bad input: CI asserts routes."""
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))
    everyone = '[c.name | some c in input.candidates]'
    cases = {
        "forwarded": (f'{{"action": "allow", "endpoints": {everyone}}}', 0),
        "blocked": ('{"action": "block", "endpoints": [], "reasons": ["no"]}', 3),
        "held": (f'{{"action": "require_approval", "endpoints": {everyone}}}', 4),
        "refused": ('{"action": "allow", "endpoints": []}', 5),
    }
    for outcome, (decision, status) in cases.items():
        folder = tmp_path / outcome
        folder.mkdir()
        rego = _decision_rego(folder, decision)
        path = config(folder, "http://127.0.0.1:9", policy={"files": [str(rego)]})
        done = run(["policy", "eval", "--config", str(path), "--request", str(request), "--json"], env)
        assert done.returncode == status, (outcome, done.stdout[-2000:], done.stderr[-2000:])
        assert json.loads(done.stdout)["outcome"] == outcome
    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "claude-sonnet-4-5", "messages": [')
    done = run(["policy", "eval", "--request", str(bad)], env)
    assert done.returncode == 2 and "request error" in done.stderr


def test_policy_reload_via_sighup(env, tmp_path):  # noqa: F811
    sim = UpstreamSimulator().start()
    try:
        rego = tmp_path / "mine.rego"
        rego.write_text(_only("us-cloud"))
        path = config(tmp_path, sim.url, policy={"files": [str(rego)]})
        proc, url = start_serve({**env, **SIM_ENV}, "--config", str(path))
        try:
            key = run(["keys", "create", "--user", "dev", "--config", str(path)], env).stdout.strip()
            client = anthropic.Anthropic(base_url=url, api_key="x", default_headers={"x-egress-key": key}, max_retries=0)

            def models() -> str:
                sim.reset()
                client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
                return sim.received[0].path

            assert models() == "/v1/messages"  # us-cloud: Anthropic API
            rego.write_text(_only("own"))
            done = run(["policy", "reload", "--config", str(path)], env)
            assert done.returncode == 0, done.stderr
            deadline = time.monotonic() + 10
            while models() != "/v1/chat/completions":  # own: Chat Completions, through translation
                assert time.monotonic() < deadline, "the policy was not reloaded"
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
        assert "policy reloaded" in out
    finally:
        sim.stop()


def test_policy_reload_without_a_running_gateway(env, tmp_path):  # noqa: F811
    done = run(["policy", "reload"], env)
    assert done.returncode == 2 and "egress.pid" in done.stderr


def _only(name: str) -> str:
    return (
        "package egress\nimport rego.v1\n"
        f'decision := {{"action": "allow", "endpoints": [c.name | some c in input.candidates; c.name == "{name}"]}}\n'
    )

