"""The wheel holds every file of the package, the data files its code reads at run time included.

A non-editable `pip install .` installs what the wheel holds and nothing else: a rule file, a
migration, a template or the policy bundle that `package-data` misses is absent after install,
and `egress serve` fails on its first read of it. The expected list is derived from git (every
tracked file under egress/), never written by hand, so a new data file is checked the day it is
added. The wheel is built the way `pip install .` builds it (an isolated build environment) from
the tracked files only, so an untracked or ignored file cannot make it pass.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.support.repo import copy_tracked, new_user_env, tracked_files


def build_wheel(tmp_path: Path) -> Path:
    source = copy_tracked(tmp_path / "source")
    dist = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)],
        env=new_user_env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, f"pip wheel failed:\n{done.stdout}\n{done.stderr}"
    wheels = sorted(dist.glob("egress-*.whl"))
    assert len(wheels) == 1, f"expected one egress wheel, found {wheels}"
    return wheels[0]


def test_wheel_holds_every_tracked_file_under_the_package(tmp_path: Path) -> None:
    expected = tracked_files("egress")
    data_files = [p for p in expected if not p.endswith(".py")]
    # The derivation found the data folders (a broken `git ls-files` would check nothing).
    for folder in ("egress/detect/rules/", "egress/defaults/", "egress/store/migrations/", "egress/policy/bundle/"):
        assert any(p.startswith(folder) for p in data_files), f"no tracked file under {folder}"

    with zipfile.ZipFile(build_wheel(tmp_path)) as wheel:
        shipped = set(wheel.namelist())

    missing = [p for p in expected if p not in shipped]
    assert not missing, (
        "files under egress/ that the wheel (and so a non-editable `pip install .`) lacks; "
        "add them to [tool.setuptools.package-data] in pyproject.toml:\n  " + "\n  ".join(missing)
    )
