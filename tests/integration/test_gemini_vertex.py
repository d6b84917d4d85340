"""Gemini on Vertex AI (`api: vertex-gemini`) through egress: google-genai, speaking the Gemini
API to the gateway with its gateway key, is answered by a Vertex endpoint that egress authorises
with OAuth2 access tokens of a service account made at test time (the Vertex simulator's token
endpoint checks the signed JWT; the Gemini simulator, in Vertex mode, accepts only a token that
endpoint issued). A secret is masked upstream and restored, whole and streamed.

    google-genai --x-goog-api-key: egk_...--> egress --Bearer ya29...--> gemini_sim (Vertex paths)
                                                 \\--signed JWT--> vertex_sim /token
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from egress.app import open_configured_store
from egress.config import load_config
from egress.gateway.auth import new_key
from tests.conftest import Running
from tests.support.gateway import ThreadedGateway, write_config
from tests.support.gemini_sim import GeminiSimulator, user_text
from tests.support.vertex_sim import LOCATION, PROJECT, VertexSimulator, make_service_account

MODEL = "gemini-2.5-pro"


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("vertex-gemini")
    tokens = VertexSimulator(seed=secrets.randbits(32)).start()
    tokens.account = make_service_account(tmp / "sa", tokens.token_uri)

    def issued(token: str) -> bool:
        expiry = tokens.tokens.get(token)
        return expiry is not None and expiry > time.time()

    sim = GeminiSimulator(seed=secrets.randbits(32), bearer=issued).start()
    providers = [
        {
            "name": "vertex-gemini-eu",
            "api": "vertex-gemini",
            "base_url": f"{sim.url}/v1/projects/{PROJECT}/locations/{LOCATION}",
            "models": ["gemini-*"],
            "credentials": {"key_file": str(tokens.account.path)},
            "operator": "Simulated Google Cloud",
            "jurisdiction": "EU",
            "region": LOCATION,
            "retention_days": 0,
            "trains_on_api_data": False,
            "dpa": True,
        }
    ]
    config = load_config(write_config(tmp, sim.url, providers=providers), env={})
    store = open_configured_store(config)
    secret, key = new_key("alice", "platform")
    store.create_key(key)
    running = Running(ThreadedGateway(config).start(), secret, store)
    yield {"gateway": running, "sim": sim, "tokens": tokens}
    running.stop()
    sim.stop()
    tokens.stop()


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_vertex_gemini_masks_upstream_and_restores(clouds: dict[str, Any], stream: bool) -> None:
    running: Running = clouds["gateway"]
    sim: GeminiSimulator = clouds["sim"]
    sim.reset()
    secret = "AKIA" + "".join(secrets.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
    prompt = f"use {secret} for the deploy"
    client = genai.Client(
        api_key=running.key,
        http_options=types.HttpOptions(base_url=running.url, retry_options=types.HttpRetryOptions(attempts=1)),
    )
    if stream:
        text = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents=prompt))
    else:
        text = client.models.generate_content(model=MODEL, contents=prompt).text or ""
    assert text == "echo: " + prompt
    [got] = sim.received
    method = "streamGenerateContent" if stream else "generateContent"
    assert got.path == f"/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}:{method}"
    assert got.query == ("alt=sse" if stream else "")
    auth = got.header("authorization") or ""
    assert auth.startswith("Bearer ") and auth[7:] in clouds["tokens"].tokens  # a token Google issued
    assert got.header("x-goog-api-key") is None  # neither the gateway key nor any API key
    assert secret not in got.body.decode() and "EGX_" in user_text(got.json())
    assert all(running.key not in v for _, v in got.headers)


def test_a_token_the_simulator_did_not_issue_is_refused(clouds: dict[str, Any]) -> None:
    sim: GeminiSimulator = clouds["sim"]
    r = httpx.post(
        f"{sim.url}/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/{MODEL}:generateContent",
        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]},
        headers={"authorization": "Bearer ya29.forged"},
    )
    assert r.status_code == 401 and r.json()["error"]["status"] == "UNAUTHENTICATED"
