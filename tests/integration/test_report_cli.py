"""`egress report` and `egress report verify` end to end on a configured SQLite store: seeded
traffic written by the gateway's audit writer with its own signing key (PII masked to the US, PII
in clear to the EU, a secret blocked, proprietary code to a self-hosted endpoint), the pack in
JSON (same bytes twice), HTML and PDF, then checked against `egress audit export` with only the
public key: it passes, and fails once a record in the export is edited."""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result

from egress.app import open_configured_store
from egress.audit.anchor import FileAnchor
from egress.audit.checkpoint import Signer, load_or_create_signing_key, public_pem
from egress.audit.settings import AuditSettings
from egress.audit.writer import AuditWriter
from egress.cli.main import main
from egress.config import load_config
from tests.unit.report import seed

CONFIG = """\
providers:
  - name: anthropic
    catalog: anthropic
    credentials: {passthrough: true}
  - name: mistral
    catalog: mistral
    credentials: {passthrough: true}
  - name: vllm
    catalog: vllm
    credentials: {passthrough: true}
organisation: {home_jurisdictions: [EU]}
"""


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    root = tmp_path_factory.mktemp("report-cli")
    (root / "egress.yaml").write_text(CONFIG)
    env = {"EGRESS_DATA_DIR": str(root / "data"), "EGRESS_CONFIG": str(root / "egress.yaml"), "HOME": str(root)}
    config = load_config(root / "egress.yaml", env=env)
    store = open_configured_store(config)
    key = load_or_create_signing_key(config.audit_signing_key_file)
    writer = AuditWriter(
        store,
        AuditSettings(flush_interval_ms=1, checkpoint_every=2),
        Signer(key),
        anchors=[FileAnchor(config.audit_checkpoint_log)],
    )
    writer.start()
    for rec in seed.scenario():
        writer.submit(seed.entry(rec))
    writer.close()
    store.close()
    (root / "public.pem").write_bytes(public_pem(key))
    return env, root


def test_report_json_is_deterministic_and_puts_each_flow_in_its_column(gateway) -> None:
    env, root = gateway
    period = ("--since", "2026-05-01T00:00:00", "--until", "2026-06-30T00:00:00")
    for name in ("a.json", "b.json"):
        result = run(env, "report", *period, "--format", "json", "-o", str(root / name))
        assert result.exit_code == 0, result.output
    assert (root / "a.json").read_bytes() == (root / "b.json").read_bytes()
    doc = orjson.loads((root / "a.json").read_bytes())
    columns = {
        (r["team"], r["endpoint"], r["data_class"]): (r["clear"], r["masked"], r["blocked"], r["in_house"])
        for r in doc["figures"]["flows"]
    }
    assert columns == {
        ("web", "anthropic", "pii"): (0, 1, 0, 0),
        ("web", "mistral", "pii"): (1, 0, 0, 0),
        ("ops", "(none)", "secret"): (0, 0, 1, 0),
        ("core", "vllm", "proprietary_code"): (0, 0, 0, 1),
    }
    recipients = {r["endpoint"]: r for r in doc["art30"]["recipients"]}
    assert recipients["anthropic"]["operator"] == "Anthropic, PBC" and recipients["anthropic"]["dpa"] is True
    transfers = {t["endpoint"]: t for t in doc["art30"]["transfers"]}
    assert "Standard Contractual Clauses" in transfers["anthropic"]["safeguard"]  # the catalog's field
    assert transfers["mistral"]["third_country"] is False
    checklists = {c["endpoint"]: c["answers"] for c in doc["checklists"]}
    assert set(checklists) == {"anthropic", "mistral", "vllm"} and checklists["vllm"]["jurisdiction"] == "self"
    assert doc["anchors"] and doc["covered"] is True


def test_report_verify_against_the_export(gateway) -> None:
    env, root = gateway
    assert run(env, "report", "--format", "json", "-o", str(root / "r.json")).exit_code == 0
    exported = run(env, "audit", "export", "-o", str(root / "export.jsonl"))
    assert exported.exit_code == 0, exported.output
    ok = run(env, "report", "verify", str(root / "r.json"), "--export", str(root / "export.jsonl"),
             "--public-key", str(root / "public.pem"))  # fmt: skip
    assert ok.exit_code == 0 and ok.output.startswith("OK: 4 records"), ok.output
    text = (root / "export.jsonl").read_bytes()
    assert text.count(b'"team":"ops"') == 1
    (root / "edited.jsonl").write_bytes(text.replace(b'"team":"ops"', b'"team":"web"'))
    bad = run(env, "report", "verify", str(root / "r.json"), "--export", str(root / "edited.jsonl"),
              "--public-key", str(root / "public.pem"))  # fmt: skip
    assert bad.exit_code == 1 and "FAILED" in bad.output and "altered" in bad.output, bad.output


def test_report_html_and_pdf(gateway) -> None:
    env, root = gateway
    assert run(env, "report", "--format", "html", "-o", str(root / "r.html")).exit_code == 0
    html = (root / "r.html").read_text()
    assert "<svg" in html and "flowchart LR" in html and "digraph dataflow" in html
    assert run(env, "report", "--format", "pdf", "-o", str(root / "r.pdf")).exit_code == 0
    text = subprocess.run(["pdftotext", str(root / "r.pdf"), "-"], check=True, capture_output=True, text=True).stdout
    assert "Government-access law" in text and "GDPR_ART_44" in text and "Anthropic," in text
