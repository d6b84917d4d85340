"""Start-up times: CLI commands that do not scan, and `egress serve` to its banner.

    python bench/startup_bench.py cli [--runs 7] [--before DIR]
    python bench/startup_bench.py serve

cli: the median wall time of each command (a new process each run). With --before DIR (a tree
exported from an older commit: `git archive REV egress | tar -x -C DIR`), the same command run
from that tree (PYTHONPATH=DIR) alternates with the current one, so both see the same load.
serve: seconds from launching `egress serve` to its "egress listening on" line, with an empty
compiled-rule cache (the first start: the automaton compiles) and then twice with it warm.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULTS = str(Path(__file__).resolve().parent.parent / "egress" / "defaults" / "egress.yaml")
COMMANDS = (
    ("--version",),
    ("--help",),
    ("keys", "list"),
    ("config", "check", DEFAULTS),
    ("policy", "--help"),
)


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one run. CPU (user + system) is what the command costs; wall time
    also holds the waits for a busy machine's cores. Run from the temporary home: `python -m`
    puts the working directory first on sys.path, which would shadow PYTHONPATH (--before)."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(args, env=env, capture_output=True, check=False, cwd=env["HOME"])
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)


def _medians(runs: list[tuple[float, float]]) -> str:
    return f"{statistics.median(w for w, _ in runs):.2f} s wall, {statistics.median(c for _, c in runs):.2f} s CPU"


def cli(runs: int, before: str | None) -> None:
    home = tempfile.mkdtemp(prefix="egress-startup-")
    env = {**os.environ, "HOME": home, "EGRESS_DATA_DIR": os.path.join(home, "data")}
    subprocess.run([sys.executable, "-m", "egress", "keys", "list"], env=env, capture_output=True, check=False)
    print(f"python -c pass: {_medians([_timed([sys.executable, '-c', 'pass'], env) for _ in range(runs)])}")
    for command in COMMANDS:
        args = [sys.executable, "-m", "egress", *command]
        now: list[tuple[float, float]] = []
        then: list[tuple[float, float]] = []
        for _ in range(runs):
            if before:
                then.append(_timed(args, {**env, "PYTHONPATH": before}))
            now.append(_timed(args, env))
        line = f"egress {' '.join(command)[:44]:<46} {_medians(now)}"
        if before:
            line += f"   (before: {_medians(then)})"
        print(line, flush=True)
    shutil.rmtree(home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve() -> None:
    home = tempfile.mkdtemp(prefix="egress-first-start-")
    env = {
        **os.environ,
        "HOME": home,
        "EGRESS_DATA_DIR": os.path.join(home, "data"),
        "XDG_CACHE_HOME": os.path.join(home, "cache"),  # empty: the first start compiles
    }
    for label in ("first start (empty cache)", "warm start", "warm start"):
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "egress", "serve", "--port", str(_free_port())],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        compiled = "no compile"
        for line in proc.stdout:
            if "compiled in" in line:
                compiled = line.strip()
            if "egress listening on" in line:
                print(f"{label}: banner after {time.monotonic() - started:.1f} s ({compiled})", flush=True)
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("cli", "serve"))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", default=None, help="an exported older tree to compare with")
    args = parser.parse_args()
    if args.what == "cli":
        cli(args.runs, args.before)
    else:
        serve()


if __name__ == "__main__":
    main()
