"""`egress scan` on files, trees, git repositories and standard input."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import yaml
from click.testing import CliRunner

from egress.cli.main import main
from egress.detect.compiled_cache import default_cache_dir

ROOT = Path(__file__).resolve().parents[2]

EMAIL = "jane.roe@northwind-traders.de"
IBAN = "DE89 3704 0044 0532 0130 00"


def scan(*args: str, input: str | None = None):
    return CliRunner().invoke(main, ["scan", "--no-progress", *args], input=input)


def tree(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "billing.py").write_text(f"# owner\nADMIN = '{EMAIL}'\n\nACCOUNT = '{IBAN}'\n")
    (tmp_path / "src" / "clean.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "out.txt").write_text(f"{EMAIL}\n")
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\x00\x00" + EMAIL.encode())
    (tmp_path / ".gitignore").write_text("build/\n")
    return tmp_path


def test_json_output_with_positions_and_previews(tmp_path):
    root = tree(tmp_path)
    result = scan(str(root), "--format", "json")
    assert result.exit_code == 1, result.output
    findings = json.loads(result.stdout)["findings"]
    assert [(f["path"].split("/")[-1], f["line"], f["column"], f["rule"]) for f in findings] == [
        ("billing.py", 2, 10, "pii-email"),
        ("billing.py", 4, 12, "pii-iban"),
    ]
    assert all(EMAIL not in f["preview"] and IBAN not in f["preview"] for f in findings)
    assert "build/out.txt" not in result.stdout  # .gitignore respected; the binary file skipped


def test_sarif_output(tmp_path):
    result = scan(str(tree(tmp_path)), "--format", "sarif")
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    assert {r["id"] for r in run["tool"]["driver"]["rules"]} == {"pii-email", "pii-iban"}
    first = run["results"][0]
    assert first["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 2,
        "startColumn": 10,
        "endLine": 2,
        "endColumn": 10 + len(EMAIL),
    }
    assert first["level"] == "warning" and run["results"][1]["level"] == "error"


def test_threshold_and_exit_codes(tmp_path):
    root = tree(tmp_path)
    assert scan(str(root / "src" / "clean.py")).exit_code == 0
    assert scan(str(root), "--fail-on", "high").exit_code == 1  # the IBAN is high
    (root / "src" / "billing.py").write_text(f"ADMIN = '{EMAIL}'\n")
    assert scan(str(root), "--fail-on", "high").exit_code == 0  # only a medium finding left
    assert scan(str(root / "missing")).exit_code == 2


def test_stdin_and_table(tmp_path):
    result = scan("-", input=f"export STRIPE_SECRET_KEY=sk_live_51Hx9e7LkQp2Zr8WvT3nYbA4cD\nmail {EMAIL}\n")
    assert result.exit_code == 1
    assert "stripe" in result.stdout and "pii-email" in result.stdout
    assert "sk_live_51Hx9e7LkQp2Zr8WvT3nYbA4cD" not in result.stdout


def test_git_tracked_files_only(tmp_path):
    root = tree(tmp_path)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "src/clean.py"], check=True)
    result = scan("--git", str(root), "--format", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["findings"] == []


def test_custom_gitleaks_rules_and_internal_identifiers(tmp_path):
    rules = tmp_path / "gitleaks.toml"
    rules.write_text("""
[extend]
useDefault = true

[[rules]]
id = "acme-license"
description = "ACME license key"
regex = \'\'\'(ACME-LIC-[A-Z0-9]{16})\'\'\'
keywords = ["acme-lic-"]
path = \'\'\'\\.cfg$\'\'\'

[allowlist]
paths = [\'\'\'fixtures/\'\'\']
""")
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "app.cfg").write_text("license = ACME-LIC-Q7W8E9R0T1Y2U3I4\n")
    (repo / "app.txt").write_text("license = ACME-LIC-Q7W8E9R0T1Y2U3I4\n")  # rule limited to .cfg files
    (repo / "fixtures").mkdir()
    (repo / "fixtures" / "a.cfg").write_text("license = ACME-LIC-Q7W8E9R0T1Y2U3I4\n")
    (repo / "notes.md").write_text("Project Nightjar talks to billing.corp.acme.net and 10.20.3.4\n")
    config = tmp_path / "egress.yaml"
    config.write_text(
        "detection:\n  internal_identifiers:\n    codenames: [Nightjar]\n    domains: [corp.acme.net]\n"
        "    ip_ranges: [10.20.0.0/16]\nproviders:\n  - {name: x, api: openai, base_url: 'http://127.0.0.1:1',"
        " models: ['*'], credentials: {passthrough: true}, operator: X, jurisdiction: self, region: local,"
        " retention_days: 0, trains_on_api_data: false, dpa: true}\n"
    )
    result = scan(str(repo), "--rules", str(rules), "--config", str(config), "--format", "json", "--fail-on", "low")
    found = sorted((f["path"].split("/")[-1], f["rule"]) for f in json.loads(result.stdout)["findings"])
    assert found == [
        ("app.cfg", "acme-license"),
        ("notes.md", "internal-codename"),
        ("notes.md", "internal-domain"),
        ("notes.md", "internal-ip"),
        ("notes.md", "pii-ipv4"),
    ]
    assert result.exit_code == 1


def test_bad_rule_file_is_an_error(tmp_path):
    rules = tmp_path / "bad.toml"
    rules.write_text("[[rules]]\nid = 'x'\nregex = '(?<=a)b'\n")
    result = scan(str(tmp_path), "--rules", str(rules))
    assert result.exit_code == 2 and "does not compile under RE2" in result.output


def egress(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """egress in its own process, with `-X importtime`: stderr lists every module it imported."""
    return subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "egress", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def own_cache(tmp_path: Path, rules: str | None = None) -> tuple[dict[str, str], Path]:
    """A fresh plan cache (XDG_CACHE_HOME in tmp_path) and a configuration whose compiled
    automata stay in the shared cache (compiling the bundled rules again takes seconds)."""
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    config = tmp_path / "egress.yaml"
    detection: dict[str, object] = {"cache_dir": str(default_cache_dir(os.environ))}
    if rules is not None:
        detection["rules"] = [rules]
    config.write_text(yaml.safe_dump({"detection": detection}))
    return env, config


def test_warm_start_reads_no_configuration_and_finds_the_same(tmp_path):
    """The first run reads the configuration and writes the plan; the next ones start from the
    plan (issue #14: a pre-commit hook starts in at most 0.3 s) and report the same findings."""
    env, config = own_cache(tmp_path)
    (tmp_path / "repo").mkdir()
    root = tree(tmp_path / "repo")
    args = ["scan", "--no-progress", "--config", str(config), "--format", "json", str(root)]
    cold = egress(args, env)
    assert cold.returncode == 1, cold.stderr[-2000:]
    assert "egress.config" in imported(cold.stderr)
    assert list((tmp_path / "xdg" / "egress").glob("scan-plan-*"))
    warm = egress(args, env)
    assert warm.returncode == 1 and warm.stdout == cold.stdout
    heavy = {"egress.config", "egress.app", "pydantic", "yaml", "aiohttp", "starlette", "regopy"}
    assert sorted(imported(warm.stderr) & heavy) == []
    # The CPU time it costs (wall time on a quiet machine; other jobs on a shared runner stretch
    # wall time, not CPU time): 0.2-0.3 s measured (docs/performance.md), 1.9 s before the plan.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    timed = subprocess.run([sys.executable, "-m", "egress", *args], env=env, capture_output=True, timeout=60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert timed.returncode == 1 and cpu < 0.8, cpu
    # Another configuration is another plan: a cold start again.
    config.write_text(config.read_text() + "masking:\n  kinds: [secret]\n")
    again = egress(args, env)
    assert again.stdout == cold.stdout and "egress.config" in imported(again.stderr)


def test_a_changed_rule_file_is_never_scanned_with_the_old_rules(tmp_path):
    rules = tmp_path / "own.toml"  # without [extend]: replaces the bundled rules (a fast compile)
    rules.write_text("[[rules]]\nid = 'acme-key'\nregex = \'\'\'(acme_[a-z]{12})\'\'\'\nkeywords = ['acme_']\n")
    env, config = own_cache(tmp_path, rules=str(rules))
    target = tmp_path / "app.cfg"
    target.write_text("key = acme_abcdefghijkl\nother = acme_123456789012\n")
    args = ["scan", "--no-progress", "--config", str(config), "--format", "json", str(target)]

    def lines() -> list[int]:
        done = egress(args, env)
        assert done.returncode in (0, 1), done.stderr[-2000:]
        return [f["line"] for f in json.loads(done.stdout)["findings"]]

    assert lines() == [1]
    assert lines() == [1]  # warm
    rules.write_text(rules.read_text().replace("[a-z]{12}", "[0-9]{12}"))
    assert lines() == [2]  # the configured rule file changed: read again
    extra = tmp_path / "extra.toml"
    extra.write_text("[[rules]]\nid = 'other'\nregex = \'\'\'(other = [a-z_0-9]+)\'\'\'\nkeywords = ['other']\n")
    done = egress([*args, "--rules", str(extra)], env)
    assert [f["rule"] for f in json.loads(done.stdout)["findings"]] == ["other"]  # --rules replaces the set


def test_pre_commit_hook_entry_fails_a_commit_with_a_secret(tmp_path):
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["egress-scan"]["language"] == "python" and hooks["egress-policy-test"]["pass_filenames"] is False
    entry = hooks["egress-scan"]["entry"].split()
    assert entry[0] == "egress"
    clean = tmp_path / "clean.py"
    clean.write_text("def add(a, b):\n    return a + b\n")
    leaky = tmp_path / "deploy.sh"
    leaky.write_text("export AWS_ACCESS_KEY_ID=AKIAZ7QHB3MXW2RLK5TE\n")
    env = {**os.environ}
    assert egress([*entry[1:], str(clean)], env).returncode == 0
    done = egress([*entry[1:], str(clean), str(leaky)], env)
    assert done.returncode == 1 and "aws-access-key-id" in done.stdout
    policy = hooks["egress-policy-test"]["entry"].split()
    assert egress(policy[1:], env).returncode == 0  # the bundled policy's tests


def test_confidence_tiers_in_json_and_sarif_and_fail_tier(tmp_path):
    """A validated format is `certain`; a vendor prefix whose checksum fails is `likely` (issue
    #14). Both are reported; --fail-tier certain fails only on the first."""
    likely = tmp_path / "likely.env"
    likely.write_text("GITHUB_TOKEN=ghp_Ab3De5Gh7Jk9Mn1Pq3Rs5Tu7Vw9Xy1Za3Bc5\n")  # checksum wrong
    certain = tmp_path / "certain.sh"
    certain.write_text("export AWS_ACCESS_KEY_ID=AKIAZ7QHB3MXW2RLK5TE\n")
    result = scan(str(likely), str(certain), "--format", "json")
    tiers = {f["path"].split("/")[-1]: f["tier"] for f in json.loads(result.stdout)["findings"]}
    assert tiers == {"likely.env": "likely", "certain.sh": "certain"}
    sarif = json.loads(scan(str(likely), "--format", "sarif").stdout)
    result_props = sarif["runs"][0]["results"][0]["properties"]
    assert result_props["tier"] == "likely"
    assert scan(str(likely)).exit_code == 1  # both tiers count by default
    assert scan(str(likely), "--fail-tier", "certain").exit_code == 0
    assert scan(str(likely), str(certain), "--fail-tier", "certain").exit_code == 1
