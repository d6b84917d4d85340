"""`egress policy eval` of a Gemini request: the path names its API and its model."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.test_serve_cli import env, run  # noqa: F401 - `env` is a fixture
from tests.integration.test_sovereign_routing import AWS_KEY, providers
from tests.support.gateway import write_config

REQUEST = {
    "systemInstruction": {"parts": [{"text": "You are Gemini CLI."}]},
    "contents": [{"role": "user", "parts": [{"text": f"deploy with {AWS_KEY}"}]}],
}


def test_a_gemini_request_is_evaluated_with_its_path(env, tmp_path: Path) -> None:  # noqa: F811
    urls = {"us": "http://127.0.0.1:9", "eu": "http://127.0.0.1:9", "own": "http://127.0.0.1:9"}
    path = write_config(tmp_path, urls["us"], providers=providers(urls), masking={"kinds": ["secret"]})
    request = tmp_path / "req.json"
    request.write_text(json.dumps(REQUEST))
    where = "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    done = run(["policy", "eval", "--config", str(path), "--request", str(request), "--path", where, "--json"], env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["api"] == "gemini.stream_generate_content"
    assert report["input"]["request"]["model"] == "gemini-2.5-pro" and report["input"]["request"]["stream"] is True
    assert {f["rule"] for f in report["findings"]} == {"aws-access-key-id"}
    # Only the Chat-only server answers Gemini here, through translation.
    assert report["endpoint"] == "own" and report["translated"] is True
    assert AWS_KEY not in done.stdout

    guessed = run(["policy", "eval", "--config", str(path), "--request", str(request), "--json"], env)
    assert guessed.returncode == 2 and "names the model in the path" in guessed.stderr  # (the console wraps)
    unknown = run(["policy", "eval", "--config", str(path), "--request", str(request), "--path", "/v1beta/x"], env)
    assert unknown.returncode == 2 and "no API's path" in unknown.stderr
