"""`egress lockdown export` as a command, on the bundled catalog and the embedded configuration:
every format is written, twice the same bytes, and the Terraform passes checkov (run from its own
venv, .tools/checkov, which scripts/test.sh installs: checkov pins many libraries of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHECKOV = REPO / ".tools" / "checkov" / "bin" / "checkov"
# Checks skipped in the generated HCL, each with its reason written beside it in the file.
EXPECTED_SKIPS = {"CKV2_AWS_5"}  # the SG is attached by aws_network_interface_sg_attachment, which the check ignores


def export(fmt: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(out.parent)}
    env.pop("EGRESS_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "egress", "lockdown", "export", "--format", fmt, "-o", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


# In process, every format is held to its golden file (tests/unit/lockdown); here, through the
# command and the bundled catalog, one address-based and one name-based format.
@pytest.mark.parametrize("fmt", ["nftables", "cilium"])
def test_export_writes_the_same_bytes_twice(fmt, tmp_path):
    extra = ("--no-resolve",) if fmt == "nftables" else ()  # DNS answers are an input: fixed here
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        result = export(fmt, out, *extra)
        assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes()
        assert "configuration revision: sha256:" in (first / rel).read_text()


def test_terraform_passes_checkov(tmp_path):
    if not CHECKOV.is_file():
        pytest.fail(
            f"checkov is not installed at {CHECKOV}: run scripts/test.sh (it installs checkov into .tools/checkov)"
        )
    out = tmp_path / "tf"
    assert export("terraform", out).returncode == 0
    result = subprocess.run(
        [str(CHECKOV), "-d", str(out), "--framework", "terraform", "-o", "json", "--compact"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [c["check_id"] for r in reports for c in r["results"]["failed_checks"]]
    skipped = {c["check_id"] for r in reports for c in r["results"]["skipped_checks"]}
    assert failed == [] and summary["failed"] == 0, failed
    assert summary["parsing_errors"] == 0 and summary["passed"] >= 10 and summary["resource_count"] >= 8
    assert skipped == EXPECTED_SKIPS
