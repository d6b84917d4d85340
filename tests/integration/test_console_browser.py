"""The console in real Chromium (Debian's `chromium`) driven by Playwright, against the real
gateway: sign in, watch a pending approval appear (htmx refresh, no reload), approve it, see the
held streaming request complete, search the audit, open a replay. Screenshots go to
artifacts/console/. A missing chromium fails the test with the command that installs it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.support.console import PASSWORD, ConsoleGateway, Held, canary, console_gateway
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


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_approve_a_held_request_then_search_and_replay(browser: Browser, console: ConsoleGateway) -> None:
    context = browser.new_context()
    page = context.new_page()
    refused: list[str] = []  # anything the browser's CSP refused, or a script error

    def watch(message: ConsoleMessage) -> None:
        if message.type == "error":
            refused.append(message.text)

    page.on("console", watch)
    page.on("pageerror", lambda error: refused.append(str(error)))

    # Sign in: the console sends an anonymous visitor to the sign-in page, then back.
    page.goto(f"{console.url}/admin/traffic")
    expect(page).to_have_url(f"{console.url}/admin/login?next=/admin/traffic")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", PASSWORD)
    shot(page, "01-sign-in")
    page.click("button[type=submit]")
    expect(page.locator("h1")).to_have_text("Live traffic")
    expect(page.locator("#who")).to_contain_text("root (admin)")

    # Live traffic refreshes itself: a request made now appears without a reload.
    console.ask("dave", "what is the capital of France?")
    expect(page.locator("#traffic tbody tr[data-request]")).to_have_count(1, timeout=15_000)
    shot(page, "02-live-traffic")

    # A secret from team platform is held for approval; the queue shows it without a reload.
    page.click("text=Approvals")
    expect(page.locator("h1")).to_have_text("Approvals")
    secret = canary()
    held = Held(console, "alice", f"deploy with STRIPE_KEY={secret}")
    row = page.locator("#pending tr[data-approval]")
    expect(row).to_have_count(1, timeout=15_000)
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("secret")
    shot(page, "03-pending-approval")
    assert not held.done

    row.locator("button.approve").click()
    expect(page).to_have_url(re.compile(r"/admin/approvals/apv_[^/]+$"))
    expect(page.locator("#status")).to_have_text(re.compile(r"^(approved|used)$"))
    held.wait()
    assert held.text  # the held stream completed with the model's answer
    page.reload()
    expect(page.locator("#status")).to_have_text("used")
    expect(page.locator("dl.facts")).to_contain_text("root")
    shot(page, "04-approved")

    # Search the audit for requests with secrets and open the recorded session.
    page.click("text=Audit")
    page.fill("input[name=kind]", "secret")
    page.click("#search button[type=submit]")
    results = page.locator("#results tbody tr[data-request]")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("alice")
    shot(page, "05-audit-search")

    results.first.locator("a.replay").click()
    expect(page.locator("h1")).to_contain_text("Replay of")
    expect(page.locator("#sent")).to_contain_text("EGX_")  # the masked body: a placeholder, not the secret
    expect(page.locator("#digests")).to_have_text("match the audit chain")
    expect(page.locator("#answer")).not_to_be_empty()
    shot(page, "06-replay")

    for path in ("/admin/traffic", "/admin/approvals", "/admin/audit?kind=secret", "/admin/flow"):
        page.goto(console.url + path)
        assert secret not in page.content(), path
    shot(page, "07-data-flow")
    assert refused == [], refused
    context.close()
