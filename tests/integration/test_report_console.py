"""The console's Reports and flow pages in real Chromium (Debian's `chromium`, driven by
Playwright as in test_console_browser.py), against the real gateway: a secret sent through the
gateway is masked, so the flow page shows it as "secret masked" (never as having left in clear),
and the Reports page generates the pack and the browser downloads it; a team lead has no Reports
page. Screenshots go to artifacts/console/."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from tests.support.console import PASSWORD, ConsoleGateway, canary, console_gateway
from tests.support.simulator import UpstreamSimulator

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get update -qq && apt-get install -y -qq chromium"
SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "console"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Debian's chromium is not installed at {CHROMIUM}; install it with: {INSTALL}", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def console(upstream: UpstreamSimulator, tmp_path: Path) -> Iterator[ConsoleGateway]:
    with console_gateway(tmp_path, upstream.url, refresh_s=0.5) as running:
        yield running


def test_flow_and_reports_pages(browser: Browser, console: ConsoleGateway, tmp_path: Path) -> None:
    secret = canary()
    console.ask("dave", f"why does STRIPE_KEY={secret} fail?")  # team payments: the secret is masked
    console.ask("dave", "what is the capital of France?")
    console.records(expect=2)
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{console.url}/admin/login?next=/admin/flow")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Data flow")
    table = page.locator("#flow tbody")
    expect(table).to_contain_text("secret masked ×1")
    expect(table).not_to_contain_text("secret clear")
    expect(page.locator("#flow-graph line.flow-link")).to_have_count(2)
    titles = page.locator("#flow-graph line.flow-link title").all_text_contents()
    assert all("secret masked 1" in t and "none clear 1" in t for t in titles), titles
    assert secret not in page.content()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "08-flow-masked.png"), full_page=True)

    page.click("nav >> text=Reports")
    expect(page.locator("h1")).to_have_text("Compliance reports")
    page.select_option("select[name=format]", "json")
    with page.expect_download() as info:
        page.click("#generate")
    download = info.value
    assert download.suggested_filename.startswith("egress-report-") and download.suggested_filename.endswith(".json")
    saved = tmp_path / "pack.json"
    download.save_as(saved)
    doc = orjson.loads(saved.read_bytes())
    flows = {(r["team"], r["endpoint"], r["data_class"]): r for r in doc["figures"]["flows"]}
    masked = flows["payments", "sim-anthropic", "secret"]
    assert (masked["clear"], masked["masked"]) == (0, 1)
    assert doc["figures"]["requests"] == 2 and secret.encode() not in saved.read_bytes()
    page.screenshot(path=str(SHOTS / "09-reports.png"), full_page=True)

    page.goto(f"{console.url}/admin/reports/download?until=yesterday")
    expect(page.locator("#message")).to_contain_text("not a date or time")
    assert errors == [], errors
    context.close()

    lead = console.sign_in("lead-payments")
    assert "/reports" not in lead.get("/admin/flow").text
    assert lead.get("/admin/reports").status_code == 403
    assert lead.get("/admin/reports/download").status_code == 403
