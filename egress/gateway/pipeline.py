"""The one place the stage order lives.

    read body -> authenticate -> parse -> inspect -> decide -> mask -> route/forward -> restore
    -> record (always, in `finally`)

Fail closed: a failure in any stage before forwarding refuses the request with the client's
native error and nothing is sent upstream; the upstream target is always an endpoint the
validated decision allowed. Every request, however it ends, leaves one audit record.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from egress.audit.record import build_egress, build_entry
from egress.audit.writer import AuditUnavailable, AuditWriter
from egress.core.capture import Capture
from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Action, Api, Decision, Exchange, Outcome, Usage
from egress.detect.scan import Scanner
from egress.gateway.approval_gate import ApprovalGate, late_upstream_error
from egress.gateway.auth import KeyRing, OidcAuth, authenticate
from egress.gateway.clients import identify
from egress.gateway.offload import Offload
from egress.gateway.responder import Responder
from egress.gateway.stage import run_stage
from egress.gateway.worker_pool import TopLevelFields, WorkerStages
from egress.mask.ledger import SessionLedger
from egress.mask.masker import Masker
from egress.mask.restore import Restorer, StreamRestorer
from egress.mask.vault import SessionVault
from egress.policy.decide import RequestFacts, policy_input
from egress.policy.service import PolicyService
from egress.recording.recordings import wants_recording
from egress.recording.writer import RecordingWriter
from egress.route.catalog import Catalog
from egress.route.health import Circuit, EndpointHealth
from egress.route.upstream import (
    HOP_BY_HOP,
    Target,
    UpstreamClient,
    UpstreamFailure,
    UpstreamResponse,
    upstream_headers,
)
from egress.wire.codecs import CODECS, WireCodec
from egress.wire.sse import SseDecoder
from egress.wire.translate import StreamTranslation, Translator, translator_for
from egress.wire.upstream_checks import protocol_error as upstream_protocol_error
from egress.wire.upstream_checks import whole_tail

log = logging.getLogger("egress.gateway")


# Response headers from upstream that egress recomputes for its own hop.
_RESPONSE_DROP = HOP_BY_HOP | {b"content-encoding"}
# Headers of a translated answer that describe the upstream's body, not the one egress sends.
_TRANSLATED_DROP = _RESPONSE_DROP | {b"content-length", b"content-type"}
# Upstream statuses after which another allowed endpoint is tried (nothing has reached the
# client yet): the endpoint is overloaded or broken, not the request.
_FAIL_OVER_STATUS = frozenset({502, 503, 504, 529})
CLASSIFICATION_HEADER = b"x-egress-classification"


@dataclass(frozen=True, slots=True)
class Limits:
    max_body_bytes: int = 32 * 1024 * 1024
    body_read_timeout_s: float = 30.0
    auth_required: bool = True
    # Labels a client may declare in x-egress-classification; only ones that tighten the policy.
    client_classifications: frozenset[str] = frozenset({"proprietary"})
    # audit.durability before_forward: how long an attempt waits for its egress record to commit
    # (then it is refused, audit_unavailable); None: after_response, no write-ahead record.
    write_ahead_timeout_s: float | None = None
    # Bodies of at least this many bytes are parsed, inspected and masked on a worker thread,
    # never on the event loop; a smaller one is inspected inline for at most inspect_inline_s
    # (then on a worker too). Its inspection gets inspect_cpu_budget_s of CPU, then it is refused.
    inline_body_bytes: int = 64 * 1024
    inspect_inline_s: float = 0.01
    inspect_cpu_budget_s: float = 2.0
    # Bodies of at least this many bytes are parsed, inspected and masked in a worker process
    # (own GIL; gateway/worker_pool.py) when the pipeline has worker_stages.
    process_body_bytes: int = 1024 * 1024


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
        health: EndpointHealth | None = None,
        approvals: ApprovalGate | None = None,
        recorder: RecordingWriter | None = None,
        worker_stages: Callable[[], WorkerStages] | None = None,
    ) -> None:
        self.catalog = catalog
        self.keyring = keyring
        self.oidc = oidc  # OIDC tokens accepted besides gateway keys (auth.oidc), or None
        self.scanner = scanner
        self.policy = policy
        self.masker = masker
        self.restorer = restorer
        self.upstream = upstream
        self.audit = audit
        self.limits = limits
        self.vault = vault
        self.ledger = ledger
        self.health = health or EndpointHealth()
        # Holds or refuses requests the policy sends to an approver; None: they are refused.
        self.approvals = approvals
        # Records payloads when the decision obliges it (record_payload); None: never.
        self.recorder = recorder
        # One thread for the vault's store calls: they never run on the event loop.
        self._vault_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="egress-vault")
        # Large bodies' parse, inspect and mask stages run off the event loop (gateway/offload.py).
        self._offload = Offload(
            inline_body_bytes=limits.inline_body_bytes,
            inspect_inline_s=limits.inspect_inline_s,
            inspect_cpu_budget_s=limits.inspect_cpu_budget_s,
            process_body_bytes=limits.process_body_bytes,
            worker_stages=worker_stages,
        )

    def close(self) -> None:
        self._vault_thread.shutdown(wait=True)
        self._offload.close()

    async def purge_vault(self) -> int:
        if self.vault is None:
            return 0
        return await asyncio.get_running_loop().run_in_executor(self._vault_thread, self.vault.purge)

    # --- the pipeline ------------------------------------------------------------------------

    async def handle(self, x: Exchange, receive: Any, responder: Responder) -> None:
        assert x.api is not None
        codec = CODECS[x.api]
        watch: DisconnectWatch | None = None
        try:
            x.body = await self._read_body(x, receive)
            x.client = identify(x.headers)
            x.principal, key_header = await authenticate(
                self.keyring, x.headers, self.limits.auth_required, self.oidc
            )
            x.parsed, x.findings = await self._offload.parse_inspect(self.scanner, codec.parse_request, x.api, x.body)
            candidates = self.catalog.candidates(x.api, x.parsed.model)
            if not candidates:
                raise EgressError(
                    ErrorCode.NO_ROUTE,
                    f"no configured provider endpoint serves {x.parsed.model!r} over the {x.api.family.value} API",
                )
            facts = RequestFacts(
                api=x.api.value,
                model=x.parsed.model,
                stream=x.parsed.stream,
                user=x.principal.user,
                team=x.principal.team,
                client=x.client.name,
                session_id=x.client.session_id,
                classifications=self._classifications(x),
            )
            x.candidates = tuple(e.name for e in candidates)
            translated = frozenset(e.name for e in candidates if not e.api.speaks(x.api))
            document = policy_input(facts, x.findings, candidates, translated)
            x.decision = await self._decide(x, document, candidates)
            if x.decision.action is Action.BLOCK or not x.decision.endpoints:
                reason = "; ".join(x.decision.reasons) or "no endpoint is allowed for this request"
                raise EgressError(ErrorCode.POLICY_DENIED, f"blocked by policy: {reason}", stage="decide")
            if x.decision.action is Action.REQUIRE_APPROVAL and self.approvals is None:
                reason = "; ".join(x.decision.reasons)
                raise EgressError(
                    ErrorCode.POLICY_DENIED, f"this request needs an approver's approval: {reason}", stage="decide"
                )
            inherited = await self._inherited(x)
            session = x.client.session_id
            known = self.ledger.known(_owner(x), session) if self.ledger is not None else None
            x.masked = await self._offload.mask(
                self.masker, codec.parse_request, x.body, x.parsed, x.findings, x.decision, inherited, known
            )
            if self.ledger is not None and x.masked.placeholders:
                self.ledger.remember(_owner(x), session, x.masked.placeholders)
            watch = DisconnectWatch(receive, asyncio.current_task(), responder)
            if x.decision.action is Action.REQUIRE_APPROVAL:
                await self._approve(x, codec, responder)
            try:
                await self._forward(x, codec, responder, key_header, watch)
            except (EgressError, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of route/forward/restore
                log.error("stage forward failed: %s", type(exc).__name__)
                raise EgressError(ErrorCode.STAGE_FAILED, "the forward stage failed", stage="forward") from exc
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
            self.audit.submit(build_entry(x))
            if x.capture is not None and self.recorder is not None:
                self.recorder.submit(x)  # the recording is built and sealed on the recorder's thread

    async def refuse(self, x: Exchange, responder: Responder, err: EgressError) -> None:
        """Refuse a request before any stage ran (wrong method); audited like any other."""
        assert x.api is not None
        x.error = err
        x.outcome = Outcome.REFUSED
        try:
            await responder.fail(err, CODECS[x.api])
        finally:
            x.status = responder.status
            x.finished_ns = time.perf_counter_ns()
            self.audit.submit(build_entry(x))

    # --- stage 3: decide ------------------------------------------------------------------------

    async def _decide(self, x: Exchange, document: dict[str, Any], candidates: tuple[Endpoint, ...]) -> Decision:
        try:
            return await self.policy.decide(document, candidates, "dec_" + x.request_id[4:])
        except EgressError:
            raise
        except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of the decide stage
            log.error("stage decide failed: %s", type(exc).__name__)
            raise EgressError(
                ErrorCode.STAGE_FAILED, "the decide stage failed; the request was not sent", stage="decide"
            ) from exc

    def _classifications(self, x: Exchange) -> tuple[str, ...]:
        """Labels the client declared that the configuration lets it declare (others ignored)."""
        raw = x.header(CLASSIFICATION_HEADER)
        if raw is None:
            return ()
        labels = {label.strip().lower() for label in raw.decode("latin-1").split(",")}
        return tuple(sorted(labels & self.limits.client_classifications))

    # --- stage 4b: just-in-time approval (egress.gateway.approval_gate) ---------------------------

    async def _approve(self, x: Exchange, codec: WireCodec, responder: Responder) -> None:
        assert self.approvals is not None
        try:
            await self.approvals.clear(x, codec, responder)
        except (EgressError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of the approval stage
            log.error("stage approve failed: %s", type(exc).__name__)
            raise EgressError(
                ErrorCode.STAGE_FAILED, "the approval stage failed; the request was not sent", stage="approve"
            ) from exc

    # --- stage 5a: the write-ahead egress record (audit.durability: before_forward) ---------------

    async def _write_ahead(self, x: Exchange, body: bytes) -> None:
        """Return only once this attempt's egress record is durable; else refuse: nothing is sent."""
        timeout = self.limits.write_ahead_timeout_s
        if timeout is None:
            return
        committed = self.audit.submit_ahead(build_egress(x, body))
        try:
            await asyncio.wait_for(committed, timeout)
        except TimeoutError:
            raise EgressError(
                ErrorCode.AUDIT_UNAVAILABLE,
                f"the audit record of this request could not be written within {timeout:g} s; it was not sent",
                stage="route",
            ) from None
        except AuditUnavailable:
            raise EgressError(
                ErrorCode.AUDIT_UNAVAILABLE, "the audit record of this request could not be written; it was not sent",
                stage="route",
            ) from None

    # --- stage 4: the session vault of stateful conversations -----------------------------------

    def _stateful(self, x: Exchange) -> bool:
        """A Responses answer the provider keeps (store defaults to true) can be continued with
        previous_response_id, so its placeholder map must outlive this request."""
        return (
            self.vault is not None
            and x.api is Api.OPENAI_RESPONSES
            and x.parsed is not None
            and x.parsed.document.get("store") is not False
        )

    async def _inherited(self, x: Exchange) -> Mapping[str, str] | None:
        assert x.parsed is not None
        previous = x.parsed.document.get("previous_response_id")
        if self.vault is None or x.api is not Api.OPENAI_RESPONSES or not isinstance(previous, str):
            return None
        loop = asyncio.get_running_loop()
        try:
            read = loop.run_in_executor(self._vault_thread, self.vault.load, previous, _owner(x))
            return await asyncio.wait_for(read, self.vault.timeout_s)  # a locked store cannot hold the request
        except Exception as exc:  # noqa: BLE001 - the fail-closed boundary of the vault read
            log.error("vault read failed: %s", type(exc).__name__)
            raise EgressError(
                ErrorCode.STAGE_FAILED, "the session vault could not be read; the request was not sent", stage="mask"
            ) from exc

    async def _remember(self, x: Exchange, response_id: str, placeholders: Mapping[str, str]) -> None:
        assert self.vault is not None
        loop = asyncio.get_running_loop()
        try:
            write = loop.run_in_executor(self._vault_thread, self.vault.save, response_id, _owner(x), placeholders)
            await asyncio.wait_for(write, self.vault.timeout_s)  # a locked store cannot hold the answer
        except Exception as exc:  # noqa: BLE001 - the answer is already on its way; log, never fail it
            log.error("vault write failed for a stateful answer: %s", type(exc).__name__)

    # --- stage 0: client bytes -----------------------------------------------------------------

    async def _read_body(self, x: Exchange, receive: Any) -> bytes:
        content_type = x.header(b"content-type")
        if content_type is None or not _is_json(content_type):
            raise EgressError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE,
                "content-type must be application/json"
                + (f", not {content_type.decode('latin-1')[:64]!r}" if content_type else ""),
            )
        limit = self.limits.max_body_bytes
        declared = x.header(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise EgressError(ErrorCode.PAYLOAD_TOO_LARGE, f"request body exceeds the limit of {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.limits.body_read_timeout_s):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise ClientGone
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > limit:
                        raise EgressError(
                            ErrorCode.PAYLOAD_TOO_LARGE, f"request body exceeds the limit of {limit} bytes"
                        )
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            raise EgressError(
                ErrorCode.REQUEST_TIMEOUT,
                f"the request body did not arrive within {self.limits.body_read_timeout_s:g} s",
            ) from None
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    # --- stages 5 and 6: route, forward, restore ------------------------------------------------

    async def _forward(
        self, x: Exchange, codec: WireCodec, responder: Responder, key_header: bytes | None, watch: DisconnectWatch
    ) -> None:
        assert x.decision is not None and x.masked is not None and x.parsed is not None and x.api is not None
        resp, translator = await self._route(x, key_header)
        x.upstream_status = resp.status
        if self.recorder is not None and wants_recording(x):
            # After masking and routing: what is captured is what this upstream got and sent.
            x.capture = Capture(self.recorder.max_bytes)
        completed = False
        try:
            if x.parsed.stream and resp.status == 200 and "text/event-stream" in resp.content_type:
                await self._relay_stream(x, codec, resp, responder, watch, translator)
            elif responder.started:
                # A held stream sent its headers before the upstream answered: an error answer
                # can only reach the client as the API's in-stream error event.
                raise late_upstream_error(resp.status, await resp.read())
            else:
                await self._relay_body(x, codec, resp, responder, translator)
            completed = True
        finally:
            if completed:
                resp.release()
            else:
                # Cancelled or failed mid-answer: close the connection so the upstream stops generating.
                resp.abort()

    async def _route(self, x: Exchange, key_header: bytes | None) -> tuple[UpstreamResponse, Translator | None]:
        """Send to the first allowed endpoint that answers, in the decision's order.

        Fail over only among the endpoints the decision allowed; skip those whose circuit is
        open. When none answers: `no_compliant_endpoint` if the policy narrowed the candidates
        (the others are not an option), else `upstream_unavailable`."""
        assert x.decision is not None and x.masked is not None and x.api is not None
        drop = frozenset({key_header}) if key_header else frozenset()
        last_error: EgressError | None = None
        # Each allowed endpoint that was not used, with why: the client's message lists them all.
        tried: list[str] = []
        attempts: list[dict[str, Any]] = []  # the same, machine-readable (the error's details)
        # The last failure's log line, written once it is known whether another endpoint follows:
        # "trying the next allowed one" only when one is actually tried.
        pending: str | None = None
        allowed = x.decision.endpoints
        for position, name in enumerate(allowed):
            endpoint = self.catalog.get(name)
            if endpoint is None:  # validate() guarantees this; kept as a hard stop
                raise EgressError(ErrorCode.STAGE_FAILED, f"unknown endpoint {name!r}", stage="route")
            if not self.health.admit(name):
                log.info("endpoint %s skipped: circuit open (request %s)", name, x.request_id)
                tried.append(f"{name!r} (skipped: {self.health.why_skipped(name)})")
                attempts.append({"endpoint": name, "cause": "circuit_open"})
                continue
            if pending is not None:
                log.warning("%s; trying the next allowed one (%s)", pending, name)
                pending = None
            translator = None if endpoint.api.speaks(x.api) else translator_for(x.api, Api.OPENAI_CHAT)
            if translator is None and not endpoint.api.speaks(x.api):
                raise EgressError(ErrorCode.STAGE_FAILED, f"endpoint {name!r} cannot answer {x.api.value}", stage="route")
            body = x.masked.body
            path = x.api.upstream_path
            if translator is not None:
                # Nothing masked: the body is the client's, already parsed; no second parse.
                # A body parsed in a worker process is held here by its top-level fields only.
                whole = x.parsed is not None and not isinstance(x.parsed.document, TopLevelFields)
                parsed = x.parsed.document if body is x.body and x.parsed is not None and whole else None
                request_body = partial(
                    translator.request_body,
                    max_tokens_cap=endpoint.max_output_tokens,
                    document=parsed,
                    system_in_user=endpoint.system_in_user,
                )
                body = await self._offload.run(len(body), "translate", request_body, body, endpoint.upstream_model)
                path = translator.upstream_path
            _note_endpoint(x, endpoint, translator is not None)
            headers = upstream_headers(x.headers, endpoint, drop)
            # Write-ahead: this attempt's egress record is committed before its first byte leaves.
            await self._write_ahead(x, body)
            x.upstream_attempts += 1
            x.upstream_body = body
            t0 = time.perf_counter_ns()
            try:
                resp = await self.upstream.send(endpoint, path, x.query, headers, body, x.request_id)
            except EgressError as err:
                if err.code not in (ErrorCode.UPSTREAM_UNAVAILABLE, ErrorCode.UPSTREAM_TIMEOUT):
                    if isinstance(err, UpstreamFailure):
                        log.warning("%s", _failure_line(err.target, err.log_detail, x.request_id))
                    raise
                self.health.failed(name)
                last_error = err
                attempts.append({"endpoint": name, "cause": err.details.get("cause", err.code.value)})
                if isinstance(err, UpstreamFailure):
                    tried.append(f"{name!r} ({err.detail})")
                    pending = _failure_line(err.target, err.log_detail, x.request_id)
                else:
                    tried.append(f"{name!r} ({err.message})")
                    pending = f"endpoint {name} failed: {err.message} (request {x.request_id})"
                continue
            finally:
                x.upstream_ns += time.perf_counter_ns() - t0
            if resp.status in _FAIL_OVER_STATUS and self._another_to_try(allowed[position + 1 :]):
                self.health.failed(name)
                resp.release()
                tried.append(f"{name!r} (HTTP {resp.status})")
                attempts.append({"endpoint": name, "cause": "http_status", "status": resp.status})
                pending = _failure_line(self.upstream.target(endpoint), f"answered HTTP {resp.status}", x.request_id)
                continue
            if resp.status >= 500:
                self.health.failed(name)
            else:
                self.health.succeeded(name)
            return resp, translator
        if pending is not None:
            log.warning("%s; no allowed endpoint is left to try", pending)
        if set(allowed) != set(x.candidates):  # the policy excluded some: they are no fallback
            raise EgressError(
                ErrorCode.NO_COMPLIANT_ENDPOINT,
                f"no endpoint that the policy allows for this request is reachable ({'; '.join(tried)}); "
                "it was not sent anywhere else",
                stage="route",
                details={"attempts": attempts},
            )
        if last_error is not None and len(tried) == 1:
            raise last_error  # one endpoint: its own message names it and the cause
        code = last_error.code if last_error is not None else ErrorCode.UPSTREAM_UNAVAILABLE
        # Every one skipped for its open circuit: nothing was tried, so none "could not be reached".
        outcome = "could be reached" if last_error is not None else "was tried"
        raise EgressError(code, f"no allowed endpoint {outcome}: {'; '.join(tried)}", details={"attempts": attempts})

    def _another_to_try(self, rest: tuple[str, ...]) -> bool:
        """Is an overloaded answer worth dropping? Only if a later allowed endpoint may be tried."""
        return any(self.health.circuit(name) is not Circuit.OPEN for name in rest)

    async def _relay_body(
        self, x: Exchange, codec: WireCodec, resp: UpstreamResponse, responder: Responder, translator: Translator | None
    ) -> None:
        assert x.masked is not None and x.api is not None and x.parsed is not None
        t0 = time.perf_counter_ns()
        try:
            raw = await resp.read()
        finally:
            x.upstream_ns += time.perf_counter_ns() - t0
        if x.capture is not None:
            x.capture.add(raw)
        status = resp.status
        if 200 <= status < 300:
            # A success must be the API's answer (in the upstream's API, before any translation):
            # garbage under a 2xx is the upstream's protocol error, never relayed as a success.
            if x.parsed.stream:
                kind = resp.content_type or "no content type"
                raise upstream_protocol_error(f"a stream was asked for and it answered {kind[:60]}")
            upstream_codec = codec if translator is None else CODECS[Api.OPENAI_CHAT]
            upstream_codec.check_body(raw)
        drop = _RESPONSE_DROP
        if translator is not None:
            # The answer in the client's own API: success and error bodies alike.
            status, raw = run_stage("translate", translator.response, status, raw)
            drop = _TRANSLATED_DROP
        if 200 <= status < 300:
            codec.usage_from_body(raw, x.usage)
            # Error bodies are forwarded unmodified (clients match on the provider's wording).
            if x.masked.placeholders and self._stateful(x):
                response_id = _response_id(raw)
                if response_id is not None:
                    await self._remember(x, response_id, x.masked.placeholders)
            raw = run_stage("restore", self.restorer.body, x.api, x.masked.placeholders, raw)
        headers = [(k, v) for k, v in resp.headers if k not in drop]
        if translator is not None:
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(raw)).encode()))
        headers.append((b"x-egress-request-id", x.request_id.encode()))
        await responder.start(status, headers)
        await responder.send(raw, more=False)

    async def _relay_stream(
        self,
        x: Exchange,
        codec: WireCodec,
        resp: UpstreamResponse,
        responder: Responder,
        watch: DisconnectWatch,
        translator: Translator | None,
    ) -> None:
        """Relay an event stream, event by event, restoring placeholders on the way.

        Invariants: the answer is relayed only while it is the API's SSE (garbage is
        `upstream_protocol_error`), and it ends only with the API's terminal event: an upstream
        that closes before it (`upstream_truncated`) ends the client's stream with the API's
        error event, and a placeholder fragment still held back is dropped, never released
        raw. The response starts with the first event to send, so a failure before it is a
        status and the native error body; after it, the in-stream error event, then a clean end."""
        assert x.masked is not None and x.api is not None
        drop = _TRANSLATED_DROP if translator is not None else _RESPONSE_DROP
        headers = [(k, v) for k, v in resp.headers if k not in drop]
        if translator is not None:
            headers.append((b"content-type", b"text/event-stream; charset=utf-8"))
        headers.append((b"x-egress-request-id", x.request_id.encode()))
        decoder = SseDecoder()
        # Upstream events in the upstream's API become events in the client's API here, before
        # anything else looks at them: observation and restoration see only the client's API.
        translation: StreamTranslation | None = translator.stream() if translator is not None else None
        observer = codec.stream_observer(x.usage)
        # Whether the upstream's answer is well-formed and whole is read in the upstream's own
        # grammar: a translation completes the client's stream even when the upstream was cut.
        upstream = observer if translation is None else CODECS[Api.OPENAI_CHAT].stream_observer(Usage())
        restorer: StreamRestorer | None = run_stage("restore", self.restorer.stream, x.api, x.masked.placeholders)
        remember = restorer is not None and self._stateful(x)
        saving: asyncio.Task[None] | None = None
        capture = x.capture
        if capture is not None:
            capture.stream = True

        async def relay(events: list[bytes]) -> None:
            # Events are checked one by one: those before a malformed one still go out, then
            # the error (after them, in the stream; or, if none went out, as the answer).
            fault: EgressError | None = None
            for i, raw in enumerate(events):
                try:
                    upstream.observe(raw)
                except EgressError as err:
                    fault, events = err, events[:i]
                    break
            await send(events)
            if fault is not None:
                raise fault

        async def send(events: list[bytes]) -> None:
            nonlocal saving
            if translation is not None:
                events = [out for raw in events for out in translation.feed(raw)]
                for raw in events:
                    observer.observe(raw)
            if not events:
                return
            if restorer is not None:
                events = [restorer.feed(raw) for raw in events]
                if remember and saving is None and restorer.response_id is not None:
                    # Saved while the answer streams, so a follow-up can find it at once.
                    saving = asyncio.ensure_future(self._remember(x, restorer.response_id, x.masked.placeholders))
            if not responder.started:  # a held stream started itself, to send keep-alives
                await responder.start(resp.status, headers)
            # Events completed by one network read go out in one write, as they came in.
            await responder.send(events[0] if len(events) == 1 else b"".join(events))
            if observer.complete:
                # The answer is whole: a client that hangs up now (Codex does, right after
                # response.completed) has not cancelled anything.
                watch.disarm()

        chunks = resp.chunks()
        try:
            while True:
                t0 = time.perf_counter_ns()
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    x.upstream_ns += time.perf_counter_ns() - t0
                if capture is not None:
                    capture.add(chunk)  # a reference, before anything is decoded or restored
                events = decoder.feed(chunk)
                if events:
                    await relay(events)
            tail = decoder.finish()
            last_event = whole_tail(tail)
            if last_event is not None:
                # An event the upstream never terminated: whole (its data parses) only when the
                # stream ended right after its last line; anything less is where the cut fell
                # (judged just below), or garbage after the end (dropped).
                try:
                    await relay([last_event])
                except EgressError as err:
                    if err.code is not ErrorCode.UPSTREAM_PROTOCOL_ERROR:
                        raise
            if not upstream.complete:
                raise EgressError(
                    ErrorCode.UPSTREAM_TRUNCATED,
                    "the upstream's stream ended before the answer was complete",
                    stage="forward",
                )
            if translation is not None:
                last = translation.finish()  # the client API's closing events, the upstream being whole
                for raw in last:
                    observer.observe(raw)
                if restorer is not None:
                    last = [restorer.feed(raw) for raw in last]
                if last:
                    if not responder.started:
                        await responder.start(resp.status, headers)
                    await responder.send(b"".join(last))
            if restorer is not None:
                restorer.finish()  # nothing can be held after the terminal event; never released raw
            if not responder.started:
                await responder.start(resp.status, headers)
            if saving is not None:
                await saving
        except EgressError as err:
            if not responder.started:
                raise  # nothing has reached the client: a status and the API's native error body
            # The stream has started: the error becomes the API's in-stream error event. What
            # the restorer still holds is a placeholder fragment of the cut answer: dropped.
            if restorer is not None:
                restorer.finish()
            x.error = err
            x.outcome = Outcome.FAILED
            await responder.send(observer.error_event(err))
        await responder.send(b"", more=False)


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class DisconnectWatch:
    """Cancels the request's task when the client disconnects, so the upstream call stops too.

    Armed lazily: most answers complete within `delay_s`, and for them no task is ever created
    (a task per request costs CPU and, once cancelled, cyclic garbage). A client that went away
    earlier is still noticed: `receive()` reports a past disconnect at once."""

    delay_s = 0.25

    def __init__(self, receive: Any, task: asyncio.Task[Any] | None, responder: Responder) -> None:
        self.disconnected = False
        self._receive: Any = receive
        self._target = task
        self._responder: Responder | None = responder
        self._task: asyncio.Task[None] | None = None
        self._handle: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(self.delay_s, self._start)

    def _start(self) -> None:
        self._handle = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            receive = self._receive
            if receive is None:
                return
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        responder = self._responder
        if self._target is not None and responder is not None and not responder.finished:
            self.disconnected = True
            self._target.cancel()

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        # Drop the references that would otherwise form a cycle through the task.
        self._target = None
        self._receive = None
        self._responder = None


def _owner(x: Exchange) -> str:
    """Whose stateful conversation this is: the authenticated user."""
    return x.principal.user if x.principal is not None else ""


def _response_id(body: bytes) -> str | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    rid = doc.get("id") if isinstance(doc, dict) else None
    return rid if isinstance(rid, str) else None


def _failure_line(target: Target, detail: str, request_id: str) -> str:
    """A failed endpoint, for the server log: name, host and port, cause. Never the URL (userinfo,
    query secrets) nor a header."""
    return f"endpoint {target.name} ({target.address}) failed: {detail} (request {request_id})"


def _note_endpoint(x: Exchange, endpoint: Endpoint, translated: bool) -> None:
    x.endpoint_name = endpoint.name
    x.endpoint_jurisdiction = endpoint.jurisdiction
    x.endpoint_region = endpoint.region
    x.translated_from = x.api if translated else None


def _is_json(content_type: bytes) -> bool:
    mime = content_type.split(b";", 1)[0].strip().lower()
    return mime == b"application/json" or (mime.startswith(b"application/") and mime.endswith(b"+json"))
