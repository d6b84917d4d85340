"""The one place the stage order lives: a request's one-way flow through the gateway.

    read body     gateway/body.py        JSON only, within the size and time limits
    authenticate  gateway/auth.py        a gateway key or an OIDC token; the client (clients.py)
    admit         limits/quota.py        rate limits and budgets (a native 429), in one pipelined
                                         Redis round trip with the session ledger's read
    parse         wire                   off the event loop when large (gateway/offload.py)
    inspect       detect                 within its CPU budget (gateway/offload.py)
    decide        gateway/decide.py      the policy over the candidates (gateway/router.py)
    mask          mask                   with the session's placeholders (gateway/session.py)
    approve       gateway/approval_gate  only where the decision requires an approver
    forward       gateway/router.py      failover among the allowed endpoints, each attempt's
                                         egress record written ahead (gateway/write_ahead.py)
    restore       gateway/relay.py       the answer, whole or streamed, translated and restored
    record        audit                  always, in `finally`

Fail closed: each stage refuses through its boundary (gateway/stage.py), and one boundary
surrounds the whole of forward/restore; a failure in any stage before forwarding refuses the
request with the client's native error and nothing is sent upstream. The upstream target is
always an endpoint the validated decision allowed. Every request, however it ends (refused,
failed, cancelled by a client that went away: gateway/disconnect.py), leaves one audit record.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from egress.audit.record import build_entry
from egress.audit.writer import AuditWriter
from egress.core.capture import Capture
from egress.core.errors import EgressError
from egress.core.exchange import Action, Exchange, Outcome
from egress.detect.scan import Scanner
from egress.gateway.approval_gate import ApprovalGate
from egress.gateway.auth import KeyRing, OidcAuth, authenticate, in_scope
from egress.gateway.body import ClientGone, read_body
from egress.gateway.clients import identify
from egress.gateway.decide import Decider, refuse_unless_allowed
from egress.gateway.disconnect import DisconnectWatch
from egress.gateway.offload import Offload
from egress.gateway.relay import Relay
from egress.gateway.responder import Responder
from egress.gateway.router import Router
from egress.gateway.session import Sessions
from egress.gateway.stage import StageBoundary
from egress.gateway.worker_pool import WorkerStages
from egress.gateway.write_ahead import WriteAhead
from egress.identity.plans import CredentialClassifier
from egress.limits.quota import Quota, Ticket
from egress.mask.ledger import SessionLedger
from egress.mask.masker import Masker
from egress.mask.restore import Restorer
from egress.mask.vault import SessionVault
from egress.policy.service import PolicyService
from egress.recording.recordings import wants_recording
from egress.recording.writer import RecordingWriter
from egress.route.catalog import Catalog
from egress.route.health import EndpointHealth
from egress.route.upstream import UpstreamClient
from egress.shared.client import HotStateDown, Slot
from egress.shared.ledger import SharedLedger
from egress.telemetry.telemetry import Telemetry
from egress.wire.apis import APIS, ApiSpec

_APPROVE = StageBoundary("approve", "the approval stage failed; the request was not sent")
_LIMITS = StageBoundary("limits", "the rate limit stage failed; the request was not sent")
# Around route, forward and restore: bytes may have left by the time it fails.
_FORWARD = StageBoundary("forward", "the forward stage failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The request limits from the configuration (server, auth, policy, detection and audit
    sections), whose defaults live in those settings types only."""

    max_body_bytes: int
    body_read_timeout_s: float
    auth_required: bool
    # Labels a client may declare in x-egress-classification; only ones that tighten the policy.
    client_classifications: frozenset[str]
    # audit.durability before_forward: how long an attempt waits for its egress record to commit
    # (then it is refused, audit_unavailable); None: after_response, no write-ahead record.
    write_ahead_timeout_s: float | None
    # Bodies of at least this many bytes are parsed, inspected and masked on a worker thread,
    # never on the event loop; a smaller one is inspected inline for at most inspect_inline_s
    # (then on a worker too). Its inspection gets inspect_cpu_budget_s of CPU, then it is refused.
    inline_body_bytes: int
    inspect_inline_s: float = 0.01  # a tunable, not configuration
    inspect_cpu_budget_s: float
    # Bodies of at least this many bytes are parsed, inspected and masked in a worker process
    # (own GIL; gateway/worker_pool.py) when the pipeline has worker_stages.
    process_body_bytes: int


class Pipeline:
    def __init__(
        self,
        *,
        catalog: Catalog,
        keyring: KeyRing,
        scanner: Scanner,
        policy: PolicyService,
        masker: Masker,
        restorer: Restorer,
        upstream: UpstreamClient,
        audit: AuditWriter,
        limits: Limits,
        oidc: OidcAuth | None = None,
        vault: SessionVault | None = None,
        ledger: SessionLedger | None = None,
        shared_ledger: SharedLedger | None = None,
        health: EndpointHealth | None = None,
        approvals: ApprovalGate | None = None,
        recorder: RecordingWriter | None = None,
        worker_stages: Callable[[], WorkerStages] | None = None,
        credentials: CredentialClassifier | None = None,
        cert_accounts: Mapping[str, str] | None = None,
        telemetry: Telemetry | None = None,
        quota: Quota | None = None,
    ) -> None:
        self.keyring = keyring
        self.oidc = oidc  # OIDC tokens accepted besides gateway keys (auth.oidc), or None
        self.scanner = scanner
        self.masker = masker
        self.audit = audit
        self.limits = limits
        self.decider = Decider(policy, limits.client_classifications)
        self.sessions = Sessions(vault, ledger, shared_ledger)
        # Large bodies' parse, inspect and mask stages run off the event loop (gateway/offload.py).
        self._offload = Offload(
            inline_body_bytes=limits.inline_body_bytes,
            inspect_inline_s=limits.inspect_inline_s,
            inspect_cpu_budget_s=limits.inspect_cpu_budget_s,
            process_body_bytes=limits.process_body_bytes,
            worker_stages=worker_stages,
        )
        self.router = Router(
            catalog=catalog,
            upstream=upstream,
            health=health or EndpointHealth(),
            write_ahead=WriteAhead(audit, limits.write_ahead_timeout_s),
            offload=self._offload,
        )
        self.relay = Relay(restorer=restorer, sessions=self.sessions)
        # Holds or refuses requests the policy sends to an approver; None: they are refused.
        self.approvals = approvals
        # Records payloads when the decision obliges it (record_payload); None: never.
        self.recorder = recorder
        # Classifies the client's own provider credential (input.credential, the audit's plan).
        self.credentials = credentials
        # Inbound mTLS: a verified client certificate's common name -> its service account.
        self.cert_accounts = cert_accounts or {}
        # Metrics, traces and the access line, from each request's audit record (egress/telemetry).
        self.telemetry = telemetry or Telemetry()
        # Rate limits and budgets per key, user and team (egress/limits); None: none configured.
        self.quota = quota
        # Redis (redis.url), shared by the limits and the ledger: one round trip per request.
        self._hot = (
            quota.hot if quota is not None and quota.hot is not None else shared_ledger.hot if shared_ledger else None
        )

    def close(self) -> None:
        self.sessions.close()
        self._offload.close()

    async def purge_vault(self) -> int:
        return await self.sessions.purge()

    # --- the stage order -----------------------------------------------------------------------

    async def handle(self, x: Exchange, receive: Any, responder: Responder) -> None:
        codec = APIS[x.api]
        watch: DisconnectWatch | None = None
        marks = self.telemetry.begin()
        ticket: Ticket | None = None
        try:
            x.body = await read_body(x, receive, self.limits.max_body_bytes, self.limits.body_read_timeout_s)
            x.client = identify(x.headers)
            x.principal, key_header = await authenticate(
                self.keyring, x.headers, self.limits.auth_required, self.oidc, x.client_cert_cn, self.cert_accounts
            )
            if self.credentials is not None:
                x.credential = self.credentials.classify(x.headers, x.query, key_header)
            usage: dict[str, Any] | None = None
            prefetched: Slot | None = None
            if self.quota is not None or self._hot is not None:
                # Before parsing and inspecting: a caller over a limit costs one round trip, and
                # gets the API's native 429 with retry-after; nothing is sent.
                with _LIMITS:
                    ticket, usage, prefetched = await self._admit(x)
            x.parsed, x.findings = await self._offload.parse_inspect(self.scanner, codec.parse_request, x.api, x.body)
            if codec.from_route is not None:  # the model (and streaming) named by the path: Gemini
                x.parsed = codec.from_route(x.parsed, x.path, x.query)
            # The caller's scope (API, model, endpoints): refused here, or candidates narrowed.
            candidates = in_scope(x.principal, x.api.value, x.parsed.model, self.router.candidates(x))
            x.decision = await self.decider.decide(x, candidates, usage)
            refuse_unless_allowed(x.decision, approvers=self.approvals is not None)
            inherited = await self.sessions.inherited(x)
            known = await self.sessions.known(x, prefetched)
            x.masked = await self._offload.mask(
                self.masker, codec.parse_request, x.body, x.parsed, x.findings, x.decision, inherited, known
            )
            await self.sessions.note_masked(x, known)
            watch = DisconnectWatch(receive, asyncio.current_task(), responder)
            if x.decision.action is Action.REQUIRE_APPROVAL and self.approvals is not None:
                with _APPROVE:
                    await self.approvals.clear(x, codec, responder)
            # The one boundary around route, forward and restore: bytes may have left by now.
            with _FORWARD:
                await self._forward(x, codec, responder, key_header, watch)
            x.outcome = Outcome.FORWARDED if x.outcome is None else x.outcome
        except EgressError as err:
            x.error = err
            x.outcome = Outcome.REFUSED if x.upstream_attempts == 0 else Outcome.FAILED
            await responder.fail(err, codec)
        except ClientGone:
            x.outcome = Outcome.CANCELLED
        except asyncio.CancelledError:
            x.outcome = Outcome.CANCELLED
            if watch is not None and watch.disconnected:
                # We cancelled ourselves because the client went away: that is an ending, not an error.
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
            else:
                raise
        finally:
            if watch is not None:
                watch.disarm()
            x.status = responder.status
            x.bytes_out = responder.bytes_out
            x.finished_ns = time.perf_counter_ns()
            # Synchronous and non-blocking: cannot be interrupted by a cancellation.
            draft = build_entry(x)
            self.audit.submit(draft)
            self.telemetry.end(x, draft.record, responder.first_byte_ns, marks)
            if ticket is not None and self.quota is not None:
                self.quota.reconcile(x, ticket)  # the answer's usage; never waits
            if x.capture is not None and self.recorder is not None:
                self.recorder.submit(x)  # the recording is built and sealed on the recorder's thread

    async def _admit(self, x: Exchange) -> tuple[Ticket | None, dict[str, Any] | None, Slot | None]:
        """The rate limits' admission and the shared ledger's read, in one pipelined Redis round
        trip: the ticket, the usage the policy reads (input.usage) and the ledger's slot (None
        when Redis did not answer: the ledger stage then asks again and fails closed). A Redis
        that does not answer never refuses here: the limits count in this process instead."""
        round_ = self._hot.round() if self._hot is not None else None
        ticket = self.quota.queue(x, round_) if self.quota is not None else None
        slot = self.sessions.queue_known(x, round_) if round_ is not None else None
        down = False
        if round_ is not None:
            try:
                await round_.run()
            except HotStateDown:
                down = True
        usage = self.quota.settle(ticket, down) if ticket is not None and self.quota is not None else None
        return ticket, usage, None if down else slot

    async def refuse(self, x: Exchange, responder: Responder, err: EgressError) -> None:
        """Refuse a request before any stage ran (wrong method); audited like any other."""
        x.error = err
        x.outcome = Outcome.REFUSED
        try:
            await responder.fail(err, APIS[x.api])
        finally:
            x.status = responder.status
            x.finished_ns = time.perf_counter_ns()
            draft = build_entry(x)
            self.audit.submit(draft)
            self.telemetry.end(x, draft.record, responder.first_byte_ns)

    async def _forward(
        self, x: Exchange, codec: ApiSpec, responder: Responder, key_header: bytes | None, watch: DisconnectWatch
    ) -> None:
        """Route to an allowed endpoint, then relay its answer, restored."""
        routed = await self.router.send(x, key_header)
        x.upstream_status = routed.response.status
        if self.recorder is not None and wants_recording(x):
            # After masking and routing: what is captured is what this upstream got and sent.
            x.capture = Capture(self.recorder.max_bytes)
        await self.relay.answer(x, codec, routed, responder, watch)
