"""Webhook notice of a new pending approval: a generic JSON document, or a Slack incoming-webhook
body (`text` and `blocks` with a button to the approval page).

Invariants: off the request path (a task; the held request never waits for it), a short timeout,
failures logged and never fatal; the body holds no prompt content and no value: ids, the user,
team, model, endpoints, the policy's reasons and counts of finding kinds and rules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson

from egress.approve.settings import WebhookFormat
from egress.core.approvals import Approval

log = logging.getLogger("egress.approve")


def generic_body(approval: Approval, url: str) -> dict[str, Any]:
    return {"type": "egress.approval.requested", "url": url, **approval.facts()}


def slack_body(approval: Approval, url: str) -> dict[str, Any]:
    who = approval.user + (f" ({approval.team})" if approval.team else "")
    kinds = ", ".join(f"{k} ×{n}" for k, n in sorted(approval.kinds.items())) or "none"
    rules = ", ".join(f"{r} ×{n}" for r, n in sorted(approval.rules.items())) or "none"
    expires = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(approval.expires_at))
    text = f"egress: {who} asks to send a request that needs approval ({approval.approval_id})"
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*Approval needed* for {_esc(who)}"}},
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*Model*\n{_esc(approval.model or '-')}"},
                    {"type": "mrkdwn", "text": f"*Endpoints*\n{_esc(', '.join(approval.endpoints) or '-')}"},
                    {"type": "mrkdwn", "text": f"*Findings*\n{_esc(kinds)}"},
                    {"type": "mrkdwn", "text": f"*Rules*\n{_esc(rules)}"},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {"type": "mrkdwn", "text": _esc("; ".join(approval.reasons) or "required by policy")},
                    {"type": "mrkdwn", "text": f"expires {expires} · {approval.approval_id}"},
                ],
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Review in egress"},
                        "url": url,
                        "style": "primary",
                        "action_id": "egress_open_approval",
                    }
                ],
            },
        ],
    }


def _esc(text: str) -> str:
    """Slack mrkdwn control characters, escaped as Slack documents."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


BODIES = {WebhookFormat.GENERIC: generic_body, WebhookFormat.SLACK: slack_body}


class Notifier:
    def __init__(
        self,
        url: str,
        fmt: WebhookFormat,
        timeout_s: float,
    ) -> None:
        if fmt not in BODIES:
            raise ValueError(f"unknown webhook format {fmt!r}")
        self.url = url
        self._body = BODIES[fmt]
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.failed = 0

    def announce(self, approval: Approval, approval_url: str) -> None:
        """Post the notice in a task of its own; returns at once."""
        body = orjson.dumps(self._body(approval, approval_url))
        task = asyncio.get_running_loop().create_task(self._post(approval.approval_id, body))
        self._tasks.add(task)  # a reference until it is done (the loop keeps only weak ones)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, approval_id: str, body: bytes) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self.url, data=body, headers={"content-type": "application/json"}) as resp:
                await resp.read()
                if resp.status >= 300:
                    self.failed += 1
                    log.warning("approval webhook answered %d for %s", resp.status, approval_id)
                    return
            self.sent += 1
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.failed += 1
            log.warning("approval webhook failed for %s: %s", approval_id, type(exc).__name__)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self._timeout.total)
        if self._session is not None:
            await self._session.close()
            self._session = None
