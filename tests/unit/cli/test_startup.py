"""`egress --version`, `egress --help` and the command groups' --help import no heavy library
(issue #12: a fast CLI).

The import set is tested, not the time: `python -X importtime` lists every module imported."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = (
    "hyperscan",
    "re2",
    "regopy",
    "aiohttp",
    "uvicorn",
    "cryptography",
    "starlette",
    "psycopg",
    "pydantic",
    "yaml",
    "jwt",
    "egress.config",
    "egress.app",
)


def imported_modules(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "egress", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "egress.cli.entry" in names  # the parse found the import lines
    return names


@pytest.mark.parametrize(
    "args",
    [
        ("--version",),
        ("--help",),
        ("keys", "--help"),
        ("audit", "--help"),
        ("config", "--help"),
        ("policy", "--help"),
        ("approvals", "--help"),
        ("admin", "--help"),
    ],
)
def test_version_and_help_import_no_heavy_module(args):
    names = imported_modules(*args)
    loaded = sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in HEAVY))
    assert loaded == []


def test_help_lists_every_command_without_importing_it():
    names = imported_modules("--help")
    assert not any(n.startswith(("egress.cli.main", "egress.cli.scan", "egress.cli.policy")) for n in names)
    out = subprocess.run([sys.executable, "-m", "egress", "--help"], capture_output=True, text=True, timeout=60).stdout
    for command in ("serve", "keys", "audit", "config", "scan", "providers", "policy", "approvals", "admin", "demo"):
        assert f"\n  {command} " in out


def test_a_lazy_command_runs_when_asked():
    """A command loaded on demand is the real one: its own --help (with its own options)."""
    out = subprocess.run(
        [sys.executable, "-m", "egress", "providers", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "--endpoint" in out.stdout and "--format" in out.stdout


# Reading and checking a configuration needs pydantic, YAML and the rule syntax (RE2, light), not
# the gateway's engines, its server, its stores or the JWT and crypto libraries.
GATEWAY_ONLY = ("hyperscan", "regopy", "aiohttp", "uvicorn", "cryptography", "starlette", "psycopg", "jwt")


def test_config_check_loads_no_gateway_engine(tmp_path):
    config = tmp_path / "egress.yaml"
    config.write_text("server: {port: 8080}\n")
    names = imported_modules("config", "check", "--no-env", str(config))
    assert "egress.config" in names
    loaded = sorted(n for n in names if any(n == h or n.startswith(h + ".") for h in GATEWAY_ONLY))
    assert loaded == []
