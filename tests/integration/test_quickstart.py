"""The README's Quick start, run as a new user runs it (issue #12).

Quick start 1 is taken from the README itself and run in a fresh `git clone` (committed files
only, in an empty folder: nothing beside it), with the machine's `python3` and pip (pip's cache is
used, so this is fast after the first run). Its install steps run exactly as written; its last
step, `egress serve` on the embedded defaults, gets one argument more, a free port, since 8080
may be taken on a test machine. Its home is a new empty folder, so its key, database and rule
cache land there and nowhere else. It must answer `/readyz` with 200 (the first start compiles the
detection automaton: tens of seconds on a busy machine, hence the generous bound), and stop
cleanly on SIGTERM: its shutdown completes (no traceback, its pid file removed).

Quick start 2 (the test command) is what `.ci/run` runs, in a fresh clone with nothing beside it.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.gateway import free_port
from tests.support.repo import REPO, fresh_clone, new_user_env, readme_quick_start

READY_WITHIN_S = 180  # generous: a cold first start compiles the automaton on a shared 2-core box
INSTALL_WITHIN_S = 900  # a new venv and every dependency (pip's cache makes it about a minute)


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def test_readme_quick_start_serves_from_a_fresh_clone(tmp_path: Path) -> None:
    serve_line = readme_quick_start()[0]
    steps = serve_line.split(" && ")
    assert len(steps) >= 2 and shlex.split(steps[-1])[-1] == "serve", (
        f"the README's first Quick start command should install, then end with `egress serve`: {serve_line!r}"
    )
    install, serve = " && ".join(steps[:-1]), shlex.split(steps[-1])
    assert "pip install" in install and " -e" not in install, f"Quick start 1 must install non-editable: {install!r}"

    clone = fresh_clone(tmp_path / "new-user" / "egress")
    env = new_user_env()
    installed = subprocess.run(
        ["bash", "-c", install], cwd=clone, env=env, capture_output=True, text=True, timeout=INSTALL_WITHIN_S
    )
    assert installed.returncode == 0, f"{install!r} failed:\n{installed.stdout}\n{installed.stderr}"
    # A real copy of the package in the venv, not a link back to the clone (the crash).
    site = next((clone / ".venv" / "lib").glob("python3*/site-packages"))
    assert sorted(p.name for p in (site / "egress" / "detect" / "rules").glob("*.toml")) == sorted(
        p.name for p in (clone / "egress" / "detect" / "rules").glob("*.toml")
    )
    assert not list(site.glob("__editable__*")), "the Quick start install is editable"

    home = tmp_path / "home"
    home.mkdir()
    serve_env = {k: v for k, v in env.items() if not k.startswith("XDG_")} | {"HOME": str(home)}
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        # Its own process group, as a shell runs a job: the stop signal goes to that group.
        proc = subprocess.Popen(
            [*serve, "--port", str(port)],
            cwd=clone,
            env=serve_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}/readyz"
        deadline = time.monotonic() + READY_WITHIN_S
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(url, timeout=2).status_code
            except httpx.TransportError:
                status = None
            if status == 200:
                break
            time.sleep(0.5)
        assert proc.poll() is None, f"egress serve exited with {proc.returncode}:\n{tail(log)}"
        assert status == 200, f"/readyz did not answer 200 within {READY_WITHIN_S} s (last: {status}):\n{tail(log)}"
        pid_file = home / ".local" / "share" / "egress" / "egress.pid"
        assert pid_file.read_text().strip() == str(proc.pid), "the embedded defaults keep their data in ~/.local/share"

        os.killpg(proc.pid, signal.SIGTERM)
        # uvicorn re-raises the signal once its shutdown is complete: either status is clean.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM), f"egress serve did not stop cleanly:\n{tail(log)}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    output = log.read_text(errors="replace")
    assert "Traceback" not in output, tail(log)
    assert "egk_" in output, f"the first start shows no gateway key:\n{tail(log)}"
    assert not pid_file.exists(), "a stopped gateway left its pid file behind"


def test_ci_runs_the_readme_test_command_in_a_fresh_clone() -> None:
    """The README's second command is the test command, and `.ci/run` runs exactly it."""
    commands = readme_quick_start()
    assert len(commands) == 2, f"the README's Quick start has two commands: {commands}"
    assert commands[1] == "bash scripts/test.sh"
    ci = (REPO / ".ci" / "run").read_text()
    assert "git clone" in ci and f"{commands[1]}" in ci
