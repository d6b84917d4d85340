"""A gateway with the console for the console tests: teams, console accounts, a signed-in
httpx client, and traffic through the official Anthropic SDK."""

from __future__ import annotations

import re
import secrets
import ssl
import string
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import httpx

from egress.admin.accounts import Passwords, Role, new_account
from egress.app import open_configured_store
from egress.config import load_config
from egress.core.records import StoredAudit
from egress.gateway.auth import new_key
from egress.store.base import SqlStore
from tests.support.gateway import SIM_ENV, ThreadedGateway, write_config

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
APPROVAL_ID = re.compile(r'data-approval="(apv_[^"]+)"')
# The bundled policy: every decision records the payload; team platform's secrets need approval.
POLICY_DATA = {"obligations": ["record_payload"], "teams": {"platform": {"approval": {"kinds": ["secret"]}}}}
# Accounts: an admin, and a team lead for each team.
ACCOUNTS = {
    "root": (Role.ADMIN, None),
    "lead-platform": (Role.TEAM_LEAD, "platform"),
    "lead-payments": (Role.TEAM_LEAD, "payments"),
}


def canary() -> str:
    """A fresh Stripe-style live key: the bundled rules find it, the policy masks it."""
    return "sk_live_" + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(24))


@dataclass
class ConsoleGateway:
    gateway: ThreadedGateway
    store: SqlStore
    keys: dict[str, str]  # user -> gateway key
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.gateway.url

    def browser(self, verify: ssl.SSLContext | bool = True) -> httpx.Client:
        """An httpx client that sends the Origin a browser would (same-origin forms)."""
        client = httpx.Client(
            base_url=self.url, headers={"origin": self.url}, follow_redirects=False, timeout=30, verify=verify
        )
        self.clients.append(client)
        return client

    def sign_in(self, name: str, password: str = PASSWORD) -> httpx.Client:
        client = self.browser()
        response = login(client, name, password)
        assert response.status_code == 303, response.text
        return client

    def sdk(self, user: str) -> anthropic.Anthropic:
        return anthropic.Anthropic(
            base_url=self.url, api_key="sk-ant-client", default_headers={"x-egress-key": self.keys[user]}, max_retries=0
        )

    def ask(self, user: str, text: str) -> str:
        """A streamed request as `user`; returns the answer's text."""
        with self.sdk(user).messages.stream(
            model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": text}]
        ) as stream:
            return stream.get_final_text()

    def records(self, expect: int, timeout: float = 10.0) -> list[StoredAudit]:
        """The audit records, newest first, once at least `expect` are committed."""
        deadline = time.monotonic() + timeout
        while True:
            rows = self.store.audit_search(limit=1000)
            if len(rows) >= expect or time.monotonic() > deadline:
                return rows
            time.sleep(0.05)


def altered(token: str) -> str:
    """The token with its first character changed (always different from the original)."""
    return ("y" if token[0] == "x" else "x") + token[1:]


def login(client: httpx.Client, name: str, password: str) -> httpx.Response:
    page = client.get("/admin/login")
    token = CSRF.search(page.text)
    assert token, page.text
    return client.post("/admin/login", data={"csrf": token.group(1), "username": name, "password": password})


def csrf_of(client: httpx.Client, path: str = "/admin/traffic") -> str:
    page = client.get(path)
    found = CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


@contextmanager
def console_gateway(
    tmp: Path,
    sim_url: str,
    store_url: str | None = None,
    server: dict[str, Any] | None = None,
    port: int | None = None,  # serve on this port (one the config's server.public_url names)
    **console: Any,
) -> Iterator[ConsoleGateway]:
    extra: dict[str, Any] = {"policy": {"data": POLICY_DATA}, "console": console}
    if store_url:
        extra["store"] = {"url": store_url}
    if server:
        extra["server"] = server
    path = write_config(tmp, sim_url, **extra)
    config = load_config(path, env=SIM_ENV)
    store = open_configured_store(config)
    keys = {}
    for user, team in (("alice", "platform"), ("dave", "payments")):
        secret, key = new_key(user, team)
        store.create_key(key)
        keys[user] = secret
    passwords = Passwords()
    for name, (role, team) in ACCOUNTS.items():
        assert store.console_user_create(new_account(passwords, name, role, team, PASSWORD))
    gateway = ThreadedGateway(config)
    if port is not None:
        gateway.port = port
    gateway.start()
    running = ConsoleGateway(gateway, store, keys)
    try:
        yield running
    finally:
        for client in running.clients:
            client.close()
        gateway.stop()
        store.close()


class Held:
    """A streamed SDK request running in a thread, held by the gateway until it is decided."""

    def __init__(self, console: ConsoleGateway, user: str, text: str) -> None:
        self.text = ""
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(console, user, text), daemon=True)
        self._thread.start()

    def _run(self, console: ConsoleGateway, user: str, text: str) -> None:
        try:
            with console.sdk(user).messages.stream(
                model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": text}]
            ) as stream:
                self.text = stream.get_final_text()
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread, which asserts on it
            self.error = exc

    def wait(self, timeout: float = 30.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the held request did not finish"
        if self.error is not None:
            raise self.error

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()
