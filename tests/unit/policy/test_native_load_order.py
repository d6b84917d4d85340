"""regopy's native library exports its own operator new/delete. If it is the first library to
pull in libstdc++, libstdc++ binds to that allocator, and google-re2 later frees memory with
glibc's: the process aborts on the first case-insensitive class compile (found in session 4,
when the console happened to import the policy engine before the detectors).

egress.policy.rego therefore loads RE2 first. These tests run in a fresh interpreter, since the
order that matters is the first import in a process."""

from __future__ import annotations

import subprocess
import sys

# A pattern that RE2 compiles fine unless the allocators are mixed.
TRIGGER = r"(?i:deepseek[\w.-]{0,20})"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_policy_engine_first_then_detectors_does_not_abort() -> None:
    result = _run(
        "import egress.policy.rego\n"
        "from egress.detect.rules import load_rule_files\n"
        f"import re2\nre2.compile({TRIGGER!r})\n"
        "print(len(load_rule_files([]).rules))\n"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert int(result.stdout.strip()) > 150


def test_the_hazard_is_real_without_the_guard() -> None:
    """The bare order the guard prevents still aborts: if regopy ever stops exporting its
    allocator, this fails and the guard (and this file) can go."""
    result = _run(f"import regopy\nimport re2\nre2.compile({TRIGGER!r})\nprint('ok')\n")
    assert result.returncode != 0
