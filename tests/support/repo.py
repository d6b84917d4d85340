"""The repository as a new user gets it: its git-tracked files, a fresh clone, a clean environment.

The packaging and quick-start tests build and install from these, never from the working tree's
untracked or ignored files (a `.venv`, build outputs, folders beside the checkout), so a file that
only exists on a developer's machine cannot make them pass.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"


def git(*args: str, cwd: Path = REPO) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {cwd} (the tests need a git checkout): {done.stderr}")
    return done.stdout


def tracked_files(under: str = ".") -> list[str]:
    """Paths (relative to the repository, '/'-separated) that git tracks under `under`."""
    return sorted(p for p in git("ls-files", "-z", "--", under).split("\0") if p)


def copy_tracked(dest: Path) -> Path:
    """The working tree's tracked files (their current content, committed or not) copied to `dest`:
    what a clone of this tree would hold, with nothing ignored or untracked."""
    for rel in tracked_files():
        source = REPO / rel
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def fresh_clone(dest: Path) -> Path:
    """`git clone` of this repository's HEAD into `dest`: committed files only, nothing beside it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    git("clone", "--quiet", str(REPO), str(dest), cwd=dest.parent)
    return dest


def new_user_env() -> dict[str, str]:
    """The environment of a new user's shell: this test run's virtualenv, PYTHONPATH and egress
    settings removed, so `python3` and `pip` are the machine's and nothing points into this
    checkout. pip's own settings (index, cache) are kept, as a user's machine has them."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"} and not k.startswith("EGRESS_")
    }
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", os.defpath).split(os.pathsep) if p != venv_bin)
    return env


def readme_quick_start() -> list[str]:
    """The shell commands of the README's "Quick start" section, one per ```sh block, in order."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Quick start\n")
    end = text.index("\n## ", start + 1)
    blocks = text[start:end].split("```sh\n")[1:]
    return [block.split("\n```", 1)[0].strip() for block in blocks]
