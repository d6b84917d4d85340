"""The approval gate: what happens to a request the policy answered with `require_approval`.

Called by the pipeline in one place, after masking (the digest covers the masked body an
identical retry reproduces) and before routing. It returns when the request may go out and
raises `EgressError` when it may not:

- an approved, unused, unexpired approval of this user for this digest exists: used (once), go;
- refuse mode: a pending approval is created and the client gets a native 403 naming its URL;
- hold mode: a pending approval is created and the request waits for a decision or the
  timeout. A stream is started at once (200, text/event-stream) and kept alive with the API's
  keep-alive (`ping` event; an SSE comment for OpenAI); a plain request waits without bytes.
  Once the stream has started, a denial becomes the API's in-stream error event (Responder).
  A client that goes away while held cancels the approval (unless an identical request of this
  process still waits on it);
- an identical request (same user, API, masked body) while an approval for it is pending joins
  that approval instead of opening another: refused with the same id, or waiting on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import orjson

from egress.approve.desk import ApprovalDesk
from egress.approve.notify import Notifier
from egress.approve.service import request_digest
from egress.approve.settings import ApprovalMode, ApprovalSettings
from egress.core.approvals import Approval, ApprovalNote, ApprovalStatus
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange, Family
from egress.gateway.responder import Responder
from egress.wire import gemini
from egress.wire.apis import ApiSpec
from egress.wire.sse import encode_event

log = logging.getLogger("egress.gateway")

APPROVAL_HEADER = b"x-egress-approval-id"

# What each API's clients treat as "still there, nothing yet" (the official SDKs skip both).
KEEPALIVE = {
    Family.ANTHROPIC: encode_event("ping", b'{"type": "ping"}'),
    Family.OPENAI: b": ping\n\n",
    # google-genai reads an SSE comment as a JSON chunk and fails: a chunk with no text instead.
    Family.GEMINI: gemini.KEEPALIVE,
}


class ApprovalGate:
    def __init__(
        self, desk: ApprovalDesk, settings: ApprovalSettings, base_url: str, notifier: Notifier | None = None
    ) -> None:
        self.desk = desk
        self.settings = settings
        self.base_url = base_url  # where approvers open an approval (links in refusals and notices)
        self.notifier = notifier

    async def close(self) -> None:
        if self.notifier is not None:
            await self.notifier.aclose()
        self.desk.close()

    def url(self, approval_id: str) -> str:
        return f"{self.base_url}/admin/approvals/{approval_id}"

    async def clear(self, x: Exchange, codec: ApiSpec, responder: Responder) -> None:
        assert x.principal is not None and x.masked is not None and x.decision is not None
        user = x.principal.user
        digest = request_digest(user, x.api.value, x.masked.body)
        used = await self.desk.consume(user, digest)
        if used is not None:
            x.approval = ApprovalNote(used.approval_id, ApprovalStatus.USED, used.decided_by)
            return
        hold = self.settings.mode is ApprovalMode.HOLD
        # An identical request (same user, API, masked body) already waiting joins its approval:
        # one decision for what is one request, however often the client retried it.
        approval, created = await self.desk.request(
            user=user,
            team=x.principal.team,
            request_id=x.request_id,
            api=x.api.value,
            model=x.parsed.model if x.parsed is not None else None,
            endpoints=x.decision.endpoints,
            reasons=x.decision.reasons,
            kinds=dict(Counter(str(f.kind) for f in x.findings)),  # the kinds by name (JSON keys)
            rules=dict(Counter(f.rule_id for f in x.findings)),
            digest=digest,
            ttl_s=self.settings.timeout_s if hold else self.settings.retry_ttl_s,
        )
        x.approval = ApprovalNote(approval.approval_id, approval.status, None)
        if self.notifier is not None and created:
            self.notifier.announce(approval, self.url(approval.approval_id))
        if not hold:
            await self._refuse(x, codec, responder, approval)
        await self._hold(x, responder, approval)

    async def _refuse(self, x: Exchange, codec: ApiSpec, responder: Responder, approval: Approval) -> None:
        reasons = "; ".join(x.decision.reasons) if x.decision is not None else ""
        err = EgressError(
            ErrorCode.APPROVAL_REQUIRED,
            f"this request needs an approver's approval ({reasons or 'policy'}). Approval "
            f"{approval.approval_id}: {self.url(approval.approval_id)} — once it is approved, send the "
            f"identical request again (usable once, within {self.settings.retry_ttl_s:g} s of the approval)",
            stage="approve",
        )
        status, headers, body = codec.render_error(err, x.request_id)
        headers.append((APPROVAL_HEADER, approval.approval_id.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        await responder.start(status, headers)
        await responder.send(body, more=False)
        raise err

    async def _hold(self, x: Exchange, responder: Responder, approval: Approval) -> None:
        assert x.parsed is not None
        approval_id = approval.approval_id
        ping = KEEPALIVE[x.api.family] if x.parsed.stream else None
        if ping is not None:
            await responder.start(
                200,
                [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-cache"),
                    (b"x-egress-request-id", x.request_id.encode()),
                    (APPROVAL_HEADER, approval_id.encode()),
                ],
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.timeout_s
        step = self.settings.ping_interval_s if ping is not None else self.settings.timeout_s
        try:
            while True:
                remaining = deadline - loop.time()
                decided = (
                    await self.desk.wait(approval_id, min(remaining, step))
                    if remaining > 0
                    else await self.desk.expire(approval_id)
                )
                if decided is not None:
                    break
                if ping is not None and deadline - loop.time() > 0:
                    await responder.send(ping)
        except asyncio.CancelledError:
            # The client went away (or the server is stopping): unless an identical request of
            # this process still waits on the approval, nobody is left to answer.
            if not self.desk.waiting(approval_id):
                self.desk.cancel_soon(approval_id)
            x.approval = ApprovalNote(approval_id, ApprovalStatus.CANCELLED, None)
            raise
        if decided.status == ApprovalStatus.APPROVED:
            used = await self.desk.use(approval_id)
            if used is not None:
                x.approval = ApprovalNote(approval_id, ApprovalStatus.USED, used.decided_by)
                return
            decided = await self.desk.get(approval_id) or decided
        x.approval = ApprovalNote(approval_id, decided.status, decided.decided_by)
        raise _refusal(decided, self.settings.timeout_s)


def _refusal(approval: Approval, timeout_s: float) -> EgressError:
    approval_id = approval.approval_id
    if approval.status == ApprovalStatus.DENIED:
        note = f": {approval.note}" if approval.note else ""
        return EgressError(
            ErrorCode.APPROVAL_DENIED,
            f"{approval.decided_by or 'an approver'} denied this request (approval {approval_id}){note}",
            stage="approve",
        )
    if approval.status == ApprovalStatus.EXPIRED:
        return EgressError(
            ErrorCode.APPROVAL_EXPIRED,
            f"no approver decided within {timeout_s:g} s (approval {approval_id}); the request was not sent",
            stage="approve",
        )
    return EgressError(
        ErrorCode.APPROVAL_DENIED,
        f"approval {approval_id} is {approval.status}; the request was not sent",
        stage="approve",
    )


def late_upstream_error(status: int, body: bytes) -> EgressError:
    """An upstream error answer after a held stream's headers went out: it can only be told as
    an in-stream error event, with the provider's own message."""
    message = ""
    try:
        doc = orjson.loads(body)
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
    except orjson.JSONDecodeError:
        pass
    code = ErrorCode.UPSTREAM_UNAVAILABLE if status >= 500 else ErrorCode.INVALID_REQUEST
    return EgressError(code, f"the provider answered {status}" + (f": {message}" if message else ""), stage="forward")
