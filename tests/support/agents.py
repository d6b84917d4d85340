"""Drive the real Claude Code and Codex CLI binaries headless, in a scratch HOME, against egress.

The binaries come from npm (pinned in `.tools/npm/package.json`). They are looked up under
`$EGRESS_NPM_PREFIX` (default: `<repo>/.tools/npm`). A missing or broken install is a test
failure with the install command, never a skip.

Every run gets an `env -i`-style environment (only what is set here), stdin from /dev/null (both
agents otherwise wait on a piped stdin), its own process group, and a hard timeout that kills the
whole group.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

CLAUDE_VERSION = "2.1.332"
CODEX_VERSION = "0.169.0"
INSTALL_HINT = (
    "install the pinned agents (from the repository root) with\n"
    f"    npm install --prefix .tools/npm @anthropic-ai/claude-code@{CLAUDE_VERSION} @openai/codex@{CODEX_VERSION}\n"
    "or, from the lock file as CI does (scripts/test.sh):\n"
    "    mkdir -p .tools/npm && cp tools/agents/package.json tools/agents/package-lock.json .tools/npm/ "
    "&& npm install --prefix .tools/npm\n"
    "or set EGRESS_NPM_PREFIX to an npm prefix that has them"
)
RUN_TIMEOUT_S = 120.0


def npm_prefix() -> Path:
    return Path(os.environ.get("EGRESS_NPM_PREFIX", REPO / ".tools" / "npm")).resolve()


def _binary(name: str) -> Path:
    path = npm_prefix() / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"the {name} binary is not installed at {path}; {INSTALL_HINT}", pytrace=False)
    return path


def node_dir() -> str:
    """The directory of `node`: the codex wrapper is a node script (`#!/usr/bin/env node`)."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the codex CLI wrapper needs it; install Node.js 20 or newer", pytrace=False)
    return str(Path(node).parent)


def base_path() -> str:
    dirs = [node_dir(), "/usr/local/bin", "/usr/bin", "/bin"]
    return ":".join(dict.fromkeys(dirs))


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    wall_s: float

    def describe(self) -> str:
        return (
            f"argv: {self.argv}\nexit: {self.returncode} after {self.wall_s:.2f} s\n"
            f"--- stdout ---\n{self.stdout[-4000:]}\n--- stderr ---\n{self.stderr[-4000:]}"
        )


def run_agent(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = RUN_TIMEOUT_S) -> Result:
    """Run one agent to completion; on timeout kill its whole process group and fail the test."""
    t0 = time.monotonic()
    with subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
            result = Result(
                argv, -9, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.monotonic() - t0
            )
            pytest.fail(f"agent did not finish within {timeout:g} s\n{result.describe()}", pytrace=False)
    return Result(
        argv, proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.monotonic() - t0
    )


def check_version(binary: Path, expected: str, env: dict[str, str], cwd: Path) -> None:
    result = run_agent([str(binary), "--version"], env, cwd, timeout=60)
    if result.returncode != 0 or expected not in result.stdout:
        pytest.fail(
            f"{binary} --version did not report {expected} (a broken or different install?)\n"
            f"{result.describe()}\n{INSTALL_HINT}",
            pytrace=False,
        )


# --- Claude Code ----------------------------------------------------------------------------------


def claude_binary() -> Path:
    return _binary("claude")


def claude_env(home: Path, gateway_url: str, gateway_key: str, provider_key: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": base_path(),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway_url,
        # Claude Code refuses to start without some credential ("Not logged in"): a fake provider
        # key, which egress must replace with the endpoint's own before forwarding.
        "ANTHROPIC_API_KEY": provider_key,
        "ANTHROPIC_CUSTOM_HEADERS": f"x-egress-key: {gateway_key}",
        # No HEAD /api/hello, no telemetry or update lookups.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        # Claude retries 401 and 5xx with backoff for minutes otherwise.
        "CLAUDE_CODE_MAX_RETRIES": "0",
    }


# --- Codex CLI -----------------------------------------------------------------------------------


def codex_binary() -> Path:
    return _binary("codex")


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def write_codex_home(
    codex_home: Path, gateway_url: str, model: str, http_headers: dict[str, str] | None = None
) -> Path:
    """A CODEX_HOME whose only provider is egress (Responses API, gateway key as the Bearer token)."""
    codex_home.mkdir(parents=True, exist_ok=True)
    headers = ""
    if http_headers:
        headers = "http_headers = { " + ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in http_headers.items()) + " }\n"
    (codex_home / "config.toml").write_text(
        f'model_provider = "egress"\n'
        f"model = {_toml(model)}\n"
        f"\n"
        f"[analytics]\n"
        f"enabled = false\n"  # no OTLP metrics (and no ~5 s flush at exit)
        f"\n"
        f"[features]\n"
        f"plugins = false\n"  # no git ls-remote / api.github.com
        f"\n"
        f"[model_providers.egress]\n"
        f'name = "egress"\n'
        f"base_url = {_toml(gateway_url.rstrip('/') + '/v1')}\n"
        f'wire_api = "responses"\n'
        f'env_key = "EGRESS_KEY"\n'
        f"request_max_retries = 1\n"
        f"stream_max_retries = 1\n"
        f"stream_idle_timeout_ms = 30000\n"
        f"{headers}"
    )
    return codex_home


def codex_env(home: Path, codex_home: Path, gateway_key: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": base_path(),
        "HOME": str(home),
        "CODEX_HOME": str(codex_home),
        "EGRESS_KEY": gateway_key,
    }


def codex_exec_argv(binary: Path, prompt: str) -> list[str]:
    return [
        str(binary),
        "exec",
        "--strict-config",
        "--skip-git-repo-check",
        "--ephemeral",
        "--sandbox",
        "read-only",
        "--color",
        "never",
        prompt,
    ]
