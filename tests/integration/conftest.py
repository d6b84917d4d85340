"""Fixtures shared by the end-to-end tests that drive the real agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import agents


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
