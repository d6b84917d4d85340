"""The recorded provider streams live in the repository, and missing test data fails loudly.

A test parametrized over files that are not there must fail, with a message naming what is
missing; it must never be collected as an empty parameter set and skipped.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.repo import REPO, tracked_files
from tests.support.simulator import RECORDED, recorded_streams


def test_recorded_streams_are_inside_the_repository_and_tracked() -> None:
    assert RECORDED.is_relative_to(REPO)
    tracked = set(tracked_files("tests/fixtures/recorded"))
    streams = [p.relative_to(REPO).as_posix() for p in recorded_streams()]
    assert {"anthropic-messages", "openai-chat", "openai-responses"} == {p.split("/")[3] for p in streams}
    untracked = [p for p in streams if p not in tracked]
    assert not untracked, f"recorded streams not committed (a fresh clone lacks them): {untracked}"
    # Their origin and licences travel with them.
    assert {"tests/fixtures/recorded/README.md", "tests/fixtures/recorded/LICENSE-Apache-2.0"} <= tracked


def test_missing_recorded_streams_raise_with_the_pattern_and_folder() -> None:
    with pytest.raises(FileNotFoundError, match=r"no recorded stream matches 'no-such-api/\*\.sse' under .*recorded"):
        recorded_streams("no-such-api/*.sse")


def test_an_empty_parameter_set_fails_collection_under_this_projects_settings(tmp_path: Path) -> None:
    (tmp_path / "test_empty.py").write_text(
        'import pytest\n\n@pytest.mark.parametrize("x", [])\ndef test_over_nothing(x):\n    pass\n'
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-c",
            str(REPO / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "test_empty.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == pytest.ExitCode.INTERRUPTED, done.stdout + done.stderr
    assert "Empty parameter set in 'test_over_nothing'" in done.stdout
    assert "skipped" not in done.stdout
