"""Drive the real coding agents headless, in a scratch HOME, against egress: Claude Code and Codex CLI
(below), aider, Mistral Vibe, Continue's CLI, Cline and OpenCode (the last section).

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


# --- The other agents (tests/integration/test_agents_more.py) ------------------------------------
# Continue's CLI, Cline and OpenCode come from the same npm prefix; aider and Mistral Vibe are
# Python programs, each in a venv of its own under .tools/ (their dependencies never mix with
# egress's), pinned in tools/agents/<name>.txt and installed by scripts/test.sh.

CONTINUE_VERSION = "1.5.47"
CLINE_VERSION = "3.0.65"
OPENCODE_VERSION = "1.18.33"
NPM_INSTALL_HINT = (
    "install the pinned agents (from the repository root), from the lock file as CI does "
    "(scripts/test.sh):\n"
    "    mkdir -p .tools/npm && cp tools/agents/package.json tools/agents/package-lock.json .tools/npm/ "
    "&& npm install --prefix .tools/npm\n"
    "or set EGRESS_NPM_PREFIX to an npm prefix that has them"
)


def tools_dir() -> Path:
    return Path(os.environ.get("EGRESS_TOOLS_DIR", REPO / ".tools")).resolve()


def python_agent_pin(name: str) -> tuple[str, str]:
    """(package, version) from tools/agents/<name>.txt, the one place the pin is written."""
    lines = [line.strip() for line in (REPO / "tools" / "agents" / f"{name}.txt").read_text().splitlines()]
    package, version = next(line for line in lines if line and not line.startswith("#")).split("==")
    return package, version


def python_agent_hint(name: str, program: str) -> str:
    package, version = python_agent_pin(name)
    python = "python3" if name != "vibe" else "a Python 3.12 or newer (e.g. ~/.pyenv/versions/3.12.*/bin/python)"
    return (
        f"install it (from the repository root) with `bash scripts/test.sh`, or by hand:\n"
        f"    {python} -m venv .tools/{name} && .tools/{name}/bin/pip install {package}=={version}\n"
        f"or set EGRESS_TOOLS_DIR to a folder that has {name}/bin/{program}"
    )


def python_agent_binary(name: str, program: str) -> Path:
    path = tools_dir() / name / "bin" / program
    if not path.exists():
        pytest.fail(f"{program} is not installed at {path}; {python_agent_hint(name, program)}", pytrace=False)
    return path


def npm_binary(name: str) -> Path:
    path = npm_prefix() / "node_modules" / ".bin" / name
    if not path.exists():
        pytest.fail(f"the {name} binary is not installed at {path}; {NPM_INSTALL_HINT}", pytrace=False)
    return path


def check_npm_package(package: str, expected: str) -> None:
    """The installed package is the pinned version (its package.json: no process to start)."""
    manifest = npm_prefix() / "node_modules" / package / "package.json"
    try:
        version = json.loads(manifest.read_text())["version"]
    except (OSError, ValueError, KeyError):
        version = None
    if version != expected:
        found = "not installed" if version is None else f"version {version}"
        pytest.fail(f"{package} at {manifest}: {found}, not the pinned {expected}; {NPM_INSTALL_HINT}", pytrace=False)


def check_python_agent(name: str, program: str) -> Path:
    """The agent's venv holds the pinned version (its dist-info folder) and its program."""
    binary = python_agent_binary(name, program)
    package, expected = python_agent_pin(name)
    dist = package.replace("-", "_")
    found = (tools_dir() / name / "lib").glob(f"python*/site-packages/{dist}-*.dist-info")
    versions = sorted(p.name[len(dist) + 1 : -len(".dist-info")] for p in found)
    if versions != [expected]:
        pytest.fail(
            f"{package} in {tools_dir() / name} is {versions or 'missing'}, not the pinned {expected}; "
            f"{python_agent_hint(name, program)}",
            pytrace=False,
        )
    return binary


# aider: the .env goes in as a chat file (aider has no tool to read files of its own accord).


def aider_env(home: Path, gateway_url: str, gateway_key: str, model: str) -> dict[str, str]:
    """aider on egress's Chat Completions (litellm's `openai/` models take OPENAI_API_BASE).

    aider looks a model up in litellm's price list and, when its cache (~/.aider/caches) has no
    entry, downloads the list from GitHub: the scratch HOME gets a cache with the model."""
    cache = home / ".aider" / "caches" / "model_prices_and_context_window.json"
    cache.parent.mkdir(parents=True, exist_ok=True)
    entry = {"max_input_tokens": 1_000_000, "max_output_tokens": 32_768, "litellm_provider": "openai"}
    cache.write_text(json.dumps({model.split("/", 1)[-1]: {**entry, "mode": "chat"}}))
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TERM": "dumb",
        "OPENAI_API_BASE": gateway_url.rstrip("/") + "/v1",
        "OPENAI_API_KEY": gateway_key,  # egress takes its gateway key as the Bearer token
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # litellm's own copy of the price list, no download
    }


def aider_argv(binary: Path, model: str, prompt: str, files: list[str]) -> list[str]:
    return [
        str(binary),
        "--model",
        model,
        "--weak-model",
        model,  # the summaries/commit model: the same one (one model to route and to cache)
        "--no-git",
        "--analytics-disable",
        "--no-check-update",
        "--no-show-release-notes",
        "--no-show-model-warnings",
        "--no-pretty",
        "--no-fancy-input",
        "--yes-always",
        "--chat-mode",
        "ask",  # answer, edit nothing
        "--map-tokens",
        "0",
        "--message",
        prompt,
        *files,
    ]


# Mistral Vibe: Mistral's own backend (the mistralai SDK, Mistral's chat API) pointed at egress.


def write_vibe_home(vibe_home: Path, gateway_url: str, model: str) -> Path:
    vibe_home.mkdir(parents=True, exist_ok=True)
    (vibe_home / "config.toml").write_text(
        f'active_model = "egress-model"\n'
        f"enable_telemetry = false\n"
        f"enable_update_checks = false\n"
        f"enable_auto_update = false\n"
        f"enable_notifications = false\n"
        # Vibe fetches an organisation's managed config from vibe_base_url (default
        # https://chat.mistral.ai) with the Mistral provider's key, here the gateway key: egress
        # answers it (404: no managed config) instead.
        f"vibe_base_url = {_toml(gateway_url.rstrip('/'))}\n"
        f"\n"
        f"[[providers]]\n"
        f'name = "egress"\n'
        f"api_base = {_toml(gateway_url.rstrip('/') + '/v1')}\n"
        f'api_key_env_var = "EGRESS_KEY"\n'
        f'backend = "mistral"\n'
        f"\n"
        f"[[models]]\n"
        f"name = {_toml(model)}\n"
        f'provider = "egress"\n'
        f'alias = "egress-model"\n'
    )
    return vibe_home


def vibe_env(home: Path, vibe_home: Path, gateway_key: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "TERM": "dumb",
        "VIBE_HOME": str(vibe_home),
        "EGRESS_KEY": gateway_key,
    }


# Continue's CLI (cn): a config.yaml whose one model is egress.


def write_continue_config(path: Path, gateway_url: str, gateway_key: str, model: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "name: egress\n"
        "version: 1.0.0\n"
        "schema: v1\n"
        "models:\n"
        "  - name: egress\n"
        "    provider: openai\n"
        f"    model: {model}\n"
        f"    apiBase: {gateway_url.rstrip('/')}/v1\n"
        f"    apiKey: {gateway_key}\n"
        "    roles: [chat, edit, apply]\n"
        "    capabilities: [tool_use]\n"
    )
    return path


def continue_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": base_path(),
        "HOME": str(home),
        "CONTINUE_GLOBAL_DIR": str(home / ".continue"),
        "CONTINUE_CLI_ENABLE_TELEMETRY": "0",
        "CONTINUE_METRICS_ENABLED": "0",
    }


# Cline's CLI: `cline auth` writes the provider (OpenAI-compatible) into a config folder.


def cline_env(home: Path) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": base_path(),
        "HOME": str(home),
        # Run the session in this process: the default starts a hub daemon that outlives the run.
        "CLINE_SESSION_BACKEND_MODE": "local",
        "CLINE_NO_AUTO_UPDATE": "1",
    }


def configure_cline(
    binary: Path, config: Path, env: dict[str, str], cwd: Path, gateway_url: str, gateway_key: str, model: str
) -> None:
    settings = config / "data" / "settings" / "global-settings.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({"telemetryOptOut": True, "autoUpdateEnabled": False}))
    argv = [str(binary), "auth", "-p", "openai", "-k", gateway_key, "-b", gateway_url.rstrip("/") + "/v1"]
    result = run_agent([*argv, "-m", model, "--config", str(config)], env, cwd, timeout=60)
    if result.returncode != 0:
        pytest.fail(f"cline auth failed\n{result.describe()}", pytrace=False)


# OpenCode: a custom provider on the AI SDK's OpenAI-compatible package, in OPENCODE_CONFIG_CONTENT.


def opencode_env(home: Path, gateway_url: str, gateway_key: str, model: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    config = {
        "$schema": "https://opencode.ai/config.json",
        "autoupdate": False,
        "share": "disabled",
        "provider": {
            "egress": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "egress",
                "options": {"baseURL": gateway_url.rstrip("/") + "/v1", "apiKey": gateway_key},
                "models": {model: {"name": model}},
            }
        },
        "model": f"egress/{model}",
        # OpenCode asks before reading a .env file, and a headless run refuses what would be asked.
        "permission": {"read": "allow"},
    }
    return {
        "PATH": base_path(),
        "HOME": str(home),
        "OPENCODE_CONFIG_CONTENT": json.dumps(config),
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",  # no models.dev catalogue download
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1",
        "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_SHARE": "1",
        # OpenCode installs @opencode-ai/plugin into its config folder in the background (npm's
        # Arborist): offline, npm takes its cache only and never asks registry.npmjs.org.
        "npm_config_offline": "true",
    }


# --- Gemini CLI ------------------------------------------------------------------------------------
# Pointed at a gateway by GOOGLE_GEMINI_BASE_URL (the base of /v1beta/models/...) with the gateway
# key as GEMINI_API_KEY (sent as x-goog-api-key). 0.61.0 takes GOOGLE_GEMINI_BASE_URL alone for its
# "gateway" auth type and then refuses it ("Invalid auth method selected"), so the auth type is
# chosen in settings.json: gemini-api-key, which still honours GOOGLE_GEMINI_BASE_URL. Usage
# statistics, telemetry and update checks are off; the workspace is trusted for a headless run.

GEMINI_VERSION = "0.61.0"


def write_gemini_home(home: Path) -> Path:
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
    }
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    path = home / ".gemini" / "settings.json"
    path.write_text(json.dumps(settings, indent=2))
    return path


def gemini_env(home: Path, gateway_url: str, gateway_key: str) -> dict[str, str]:
    write_gemini_home(home)
    return {
        "PATH": base_path(),
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": gateway_url,
        "GEMINI_API_KEY": gateway_key,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
        "GEMINI_TELEMETRY_ENABLED": "false",
        "TERM": "dumb",
        "NO_COLOR": "1",
    }
