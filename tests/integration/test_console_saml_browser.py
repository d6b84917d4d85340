"""SAML sign-in in real Chromium (Debian's `chromium`, driven by Playwright): the console's
sign-in page -> the IdP (a local pysaml2 IdP, tests/support/saml_idp.py) -> its auto-submitting
HTTP-POST form -> the console's ACS -> the page asked for, signed in with the role the
attributes map to. Then a refusal as the browser sees it: the same response posted again."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Request, expect, sync_playwright

from tests.support.console import ConsoleGateway, console_gateway
from tests.support.gateway import free_port
from tests.support.saml_idp import LocalSamlIdp
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
def idp() -> Iterator[LocalSamlIdp]:
    started = LocalSamlIdp("noor@example.org", {"mail": ["noor@example.org"], "groups": ["staff"]}).start()
    yield started
    started.stop()


@pytest.fixture
def console(upstream: UpstreamSimulator, idp: LocalSamlIdp, tmp_path: Path) -> Iterator[ConsoleGateway]:
    port = free_port()
    saml = {"idp_metadata_url": idp.url + "/metadata", "admin_groups": ["staff"], "user_attribute": "mail"}
    with console_gateway(
        tmp_path, upstream.url, server={"public_url": f"http://127.0.0.1:{port}"}, port=port, saml=saml
    ) as running:
        idp.trust(httpx.get(running.url + "/admin/saml/metadata").text)
        yield running


def test_sign_in_through_the_idp_in_chromium(browser: Browser, console: ConsoleGateway, idp: LocalSamlIdp) -> None:
    context = browser.new_context()
    page = context.new_page()
    posted: list[dict[str, str]] = []

    def watch(request: Request) -> None:
        if request.method == "POST" and request.url == console.url + "/admin/saml/acs":
            posted.append({"body": request.post_data or ""})

    page.on("request", watch)
    page.goto(f"{console.url}/admin/approvals")
    expect(page).to_have_url(f"{console.url}/admin/login?next=/admin/approvals")
    page.click("#saml")
    # The IdP's form posts itself to the ACS; the console lands on the page first asked for.
    expect(page).to_have_url(f"{console.url}/admin/approvals")
    expect(page.locator("h1")).to_have_text("Approvals")
    expect(page.locator("#who")).to_contain_text("noor@example.org (admin)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "saml-signed-in.png"), full_page=True)
    assert len(posted) == 1 and "SAMLResponse=" in posted[0]["body"]

    # The browser's own copy of that response, posted again from a page in it: refused.
    replay = context.new_page()
    replay.goto(f"{console.url}/admin/login")
    body = posted[0]["body"]
    answer = replay.request.post(
        console.url + "/admin/saml/acs",
        data=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        max_redirects=0,
    )
    assert answer.status == 403
    assert "sign-in refused" in answer.text()
    context.close()
