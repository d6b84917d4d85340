"""Fixtures shared by the end-to-end tests: the real agents, the self-hosted model, simulators."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import agents, selfhosted
from tests.support.simulator import UpstreamSimulator


@pytest.fixture(scope="module")
def claude(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned Claude Code binary (the test fails, with the install command, if it is missing)."""
    scratch = tmp_path_factory.mktemp("claude-version")
    binary = agents.claude_binary()
    agents.check_version(binary, agents.CLAUDE_VERSION, {"PATH": agents.base_path(), "HOME": str(scratch)}, scratch)
    return binary


@pytest.fixture(scope="module")
def codex(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned Codex CLI (the test fails, with the install command, if it is missing)."""
    scratch = tmp_path_factory.mktemp("codex-version")
    binary = agents.codex_binary()
    env = {"PATH": agents.base_path(), "HOME": str(scratch), "CODEX_HOME": str(scratch / "codex")}
    agents.check_version(binary, agents.CODEX_VERSION, env, scratch)
    return binary


@pytest.fixture(scope="session")
def selfhosted_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[selfhosted.SelfHostedServer]:
    """The real llama.cpp OpenAI-compatible server with the Gemma 3 270M model, one per session.

    Fails (never skips) the test when the 'selfhosted' extra is missing: a skipped test would not
    show that the self-hosted route was never exercised."""
    missing = selfhosted.missing_packages()
    if missing:
        pytest.fail(
            f"the self-hosted model server cannot start: {', '.join(missing)} not importable; "
            f"{selfhosted.INSTALL_HINT}",
            pytrace=False,
        )
    with selfhosted.running(tmp_path_factory.mktemp("selfhosted")) as server:
        yield server


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, UpstreamSimulator]]:
    """Three upstream simulators standing for a US cloud, an EU cloud and a self-hosted server."""
    started = {name: UpstreamSimulator(seed=secrets.randbits(32)).start() for name in ("us", "eu", "own")}
    yield started
    for sim in started.values():
        sim.stop()
