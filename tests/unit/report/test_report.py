"""The compliance pack over seeded traffic: each flow in its column, deterministic JSON, the PDF
renders (pdftoppm, pdftotext), and `report verify` recomputes the figures from an audit export,
passing on the real export and failing when a record in it is edited."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from egress.admin.flowgraph import CLEAR, IN_HOUSE, MASKED, layout
from egress.admin.records import Flow
from egress.audit.export import ExportFilter, export_jsonl, read_export
from egress.report.dpia import HIGH, LOW, likelihood, matrix
from egress.report.model import Report, build
from egress.report.render_html import render_html
from egress.report.render_json import render_json
from egress.report.render_pdf import render_pdf
from egress.report.verify import verify_report
from tests.unit.report import seed

KEY = Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Report, bytes, list[bytes]]:
    store = seed.write(tmp_path_factory.mktemp("report") / "audit.db", KEY, seed.scenario())
    try:
        report = build(store.iter_audit(), store.list_checkpoints(), seed.context(), 0.0, 2e9)
        lines = list(export_jsonl(store.iter_audit(), store.list_checkpoints(), ExportFilter(), 1.0))
    finally:
        store.close()
    return report, render_json(report), lines


def test_each_flow_is_in_its_column(pack) -> None:
    report, _, _ = pack
    rows = {(r.team, r.endpoint, r.jurisdiction, r.data_class): r for r in report.figures.flows}
    masked_us = rows["web", "anthropic", "US", "pii"]
    assert (masked_us.clear, masked_us.masked, masked_us.blocked, masked_us.in_house) == (0, 1, 0, 0)
    clear_eu = rows["web", "mistral", "FR", "pii"]
    assert (clear_eu.clear, clear_eu.masked) == (1, 0)
    secret = rows["ops", "(none)", "(none)", "secret"]
    assert (secret.blocked, secret.clear, secret.masked) == (1, 0, 0)
    code = rows["core", "vllm", "self", "proprietary_code"]
    assert (code.in_house, code.clear) == (1, 0)
    assert len(rows) == 4


def test_sections_cite_requirements_and_facts(pack) -> None:
    report, _, _ = pack
    transfers = {t.endpoint: t for t in report.art30.transfers}
    assert transfers["anthropic"].third_country and transfers["anthropic"].safeguard == "SCCs"
    assert not transfers["mistral"].third_country and not transfers["vllm"].third_country
    assert report.art30.personal_data == {"pii-email": 2}
    codes = {r.code: r.requirements for r in report.reasons}
    assert "GDPR_ART_44" in codes["PII_JURISDICTION"] and "GDPR_ART_46" in codes["PII_JURISDICTION"]
    assert codes["PROPRIETARY_SELF_HOSTED"] == ("EU_2016_943_ART_2",)
    assert "GDPR_ART_30" in report.requirements["art30"]
    laws = {j.jurisdiction: j for j in report.government_access}
    assert "US CLOUD Act (18 U.S.C. 2713)" in laws["US"].operator_law
    assert any("FISA Section 702" in law for law in laws["US"].local_law)
    assert [v.revision for v in report.figures.policy_revisions] == ["rev-1", "rev-2"]
    assert report.figures.credential_plans == {"api": 4}
    dpia = {(s.endpoint, s.data_class): s for s in report.dpia}
    assert dpia["mistral", "pii"].severity == HIGH and dpia["anthropic", "pii"].severity == LOW
    assert ("vllm", "proprietary_code") not in dpia  # kept in-house: no provider risk
    assert report.anchors and report.covered and report.anchors[-1].seq >= report.figures.last_seq


def test_flow_map_renderings(pack) -> None:
    report, _, _ = pack
    m = report.data_flow
    assert m.svg.startswith("<svg") and "anthropic" in m.svg and "in-house" in m.svg
    assert '-->|"masked: pii 1 (1)"|' in m.mermaid and '-->|"clear: pii 1 (1)"|' in m.mermaid
    assert m.dot.startswith("digraph dataflow {") and 'label="blocked: secret 1 (1)"' in m.dot


def test_risk_matrix() -> None:
    assert matrix("low", "low") == "low"
    assert matrix("high", "low") == "medium"
    assert matrix("medium", "high") == "high"
    assert matrix("medium", "medium") == "medium"


def test_json_is_deterministic(pack, tmp_path: Path) -> None:
    _, first, _ = pack
    store = seed.write(tmp_path / "again.db", KEY, seed.scenario())
    try:
        again = build(store.iter_audit(), store.list_checkpoints(), seed.context(), 0.0, 2e9)
    finally:
        store.close()
    # Another chain (new checkpoint times and signatures): the figures and map are the same bytes.
    doc, other = orjson.loads(first), orjson.loads(render_json(again))
    assert doc["figures"] == other["figures"] and doc["data_flow"] == other["data_flow"]
    assert render_json(pack[0]) == first


def test_verify_passes_on_the_export_and_fails_on_an_edit(pack) -> None:
    report, body, lines = pack
    doc = orjson.loads(body)
    check = verify_report(doc, read_export(lines), KEY.public_key())
    assert check.ok, check.problems
    assert check.records == 4 and check.anchors == len(report.anchors)
    edited = [line.replace(b'"jurisdiction":"FR"', b'"jurisdiction":"US"') for line in lines]
    assert edited != lines
    bad = verify_report(doc, read_export(edited), KEY.public_key())
    assert not bad.ok and any("altered" in p for p in bad.problems)
    # A report whose figure was changed fails against the true export.
    doc["figures"]["requests"] = 5
    assert any("'requests'" in p for p in verify_report(doc, read_export(lines), KEY.public_key()).problems)


def test_html_and_pdf_render(pack, tmp_path: Path) -> None:
    report, _, _ = pack
    html = render_html(report)
    assert "Record of processing" in html or "record of processing" in html
    for tool in ("pdftoppm", "pdftotext"):
        assert shutil.which(tool), f"{tool} is missing: scripts/test.sh installs poppler-utils"
    pdf = tmp_path / "pack.pdf"
    pdf.write_bytes(render_pdf(report))
    assert pdf.read_bytes().startswith(b"%PDF")
    subprocess.run(["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")], check=True)
    png = next(tmp_path.glob("page*.png"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
    text = subprocess.run(["pdftotext", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    assert "egress compliance pack" in text and "DPIA input" in text and "GDPR_ART_30" in text
    assert "mistral" in text and "CLOUD Act" in text


def test_console_flow_view_counts_a_masked_finding_as_masked() -> None:
    """The console's flow view (egress.admin.flowgraph) colours and labels a link by where its
    data classes went: a masked PII finding is orange and says "masked", never red "clear"."""
    flow = Flow(
        requests={
            ("web", "a", "anthropic", "US"): 1,
            ("web", "a", "mistral", "FR"): 1,
            ("core", "c", "vllm", "self"): 1,
        },
        classes={
            ("web", "a", "anthropic", "US"): {"pii masked": 1},
            ("web", "a", "mistral", "FR"): {"pii clear": 1},
            ("core", "c", "vllm", "self"): {"proprietary_code in-house": 1},
        },
    )
    links = {(link.detail, link.colour) for link in layout(flow).links}
    assert ("pii masked 1", MASKED) in links and ("pii clear 1", CLEAR) in links
    assert ("proprietary_code in-house 1", IN_HOUSE) in links


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d.pop("figures"), "numeric period"),
        (lambda d: d["figures"].update(since="yesterday"), "numeric period"),
        (lambda d: d.update(anchors={"seq": 1}), "not a list"),
        (lambda d: d["anchors"].append({"seq": "x"}), "is not a checkpoint"),
        (lambda d: d.update(format="something else"), "not an egress report"),
    ],
)
def test_verify_names_a_damaged_report(pack, edit, named) -> None:
    _, body, lines = pack
    doc = orjson.loads(body)
    edit(doc)
    check = verify_report(doc, read_export(lines), KEY.public_key())
    assert not check.ok and named in check.problems[0]


def test_dpia_likelihood_from_catalog_facts() -> None:
    base = seed.context().endpoints["anthropic"]
    assert likelihood(base)[0] == "medium"  # retained 30 days, US operator's law
    trains = replace(base, trains_on_api_data=True, dpa=False)
    level, why = likelihood(trains)
    assert level == HIGH and "the operator trains on API data" in why and "no data processing agreement" in why
    eu_zdr = replace(base, operator_jurisdiction="FR", zero_data_retention=True)
    assert likelihood(eu_zdr) == (LOW, ["zero data retention in effect"])


def test_checklists_say_why_they_are_missing(pack) -> None:
    report, _, _ = pack
    # The seeded context has the endpoints but no checklist answers (as the console's pack).
    assert {(c.endpoint, c.configured, bool(c.answers)) for c in report.checklists} == {
        ("anthropic", True, False),
        ("mistral", True, False),
        ("vllm", True, False),
    }
    assert "Not computed here" in render_html(report) and "Not in the configuration" not in render_html(report)
