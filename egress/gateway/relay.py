"""The answer's way back to the client: a whole body or an event stream, translated into the
client's API when the endpoint speaks another, with the placeholders restored.

Invariants:
- a 2xx answer is relayed only while it is the API's answer (checked in the upstream's own API,
  before any translation): garbage is `upstream_protocol_error`, never relayed as a success;
- error bodies are forwarded unmodified (clients match on the provider's wording), only
  translated into the client's error shape;
- a stream ends only with the API's terminal event: one cut short (`upstream_truncated`) ends
  with the API's error event, and a placeholder fragment still held back is dropped, never
  released raw;
- the upstream response is released once relayed whole, else aborted (the upstream stops);
- where the API echoes the model (`ApiSpec.model_echo`), a 2xx answer names the model the client
  asked for, not the id model mapping sent upstream (the client's caches key on its own name).
"""

from __future__ import annotations

import asyncio
import time

from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange, Outcome, Usage
from egress.gateway.approval_gate import late_upstream_error
from egress.gateway.disconnect import DisconnectWatch
from egress.gateway.responder import Responder
from egress.gateway.router import Routed
from egress.gateway.session import Sessions, response_id
from egress.gateway.stage import run_stage
from egress.mask.model_field import ModelEcho
from egress.mask.restore import Restorer, StreamRestorer
from egress.route.upstream import HOP_BY_HOP, UpstreamResponse
from egress.wire.apis import NO_ECHO, ApiSpec, upstream_spec
from egress.wire.sse import SseDecoder
from egress.wire.translate import StreamTranslation, Translator
from egress.wire.upstream_checks import protocol_error as upstream_protocol_error
from egress.wire.upstream_checks import whole_tail

# Response headers from upstream that egress recomputes for its own hop.
_RESPONSE_DROP = HOP_BY_HOP | {b"content-encoding"}
# Headers of a translated answer that describe the upstream's body, not the one egress sends.
_TRANSLATED_DROP = _RESPONSE_DROP | {b"content-length", b"content-type"}


class Relay:
    def __init__(self, *, restorer: Restorer, sessions: Sessions) -> None:
        self.restorer = restorer
        self.sessions = sessions  # a stateful answer's placeholders are kept under its id

    async def answer(
        self, x: Exchange, codec: ApiSpec, routed: Routed, responder: Responder, watch: DisconnectWatch
    ) -> None:
        """Relay the routed endpoint's answer, whole or streamed, and let go of its connection."""
        assert x.parsed is not None
        resp, translator = routed.response, routed.translator
        completed = False
        try:
            if x.parsed.stream and resp.status == 200 and "text/event-stream" in resp.content_type:
                await self._stream(x, codec, resp, responder, watch, translator)
            elif responder.started:
                # A held stream sent its headers before the upstream answered: an error answer
                # can only reach the client as the API's in-stream error event.
                raise late_upstream_error(resp.status, await resp.read())
            else:
                await self._body(x, codec, resp, responder, translator)
            completed = True
        finally:
            if completed:
                resp.release()
            else:
                # Cancelled or failed mid-answer: close the connection so the upstream stops generating.
                resp.abort()

    async def _body(
        self, x: Exchange, codec: ApiSpec, resp: UpstreamResponse, responder: Responder, translator: Translator | None
    ) -> None:
        assert x.masked is not None and x.parsed is not None
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
            upstream_codec = upstream_spec(x.api, translator is not None)
            upstream_codec.check_body(raw)
        drop = _RESPONSE_DROP
        if translator is not None:
            # The answer in the client's own API: success and error bodies alike.
            status, raw = run_stage("translate", translator.response, status, raw)
            drop = _TRANSLATED_DROP
        if 200 <= status < 300:
            codec.usage_from_body(raw, x.usage)
            # Error bodies are forwarded unmodified (clients match on the provider's wording).
            echo = _echo(x, codec)
            if echo is not None:
                raw = run_stage("restore", echo.body, raw)
            if x.masked.placeholders and self.sessions.stateful(x):
                answer_id = response_id(x, raw)
                if answer_id is not None:
                    await self.sessions.remember(x, answer_id, x.masked.placeholders)
            raw = run_stage("restore", self.restorer.body, x.api, x.masked.placeholders, raw)
        headers = [(k, v) for k, v in resp.headers if k not in drop]
        if translator is not None:
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(raw)).encode()))
        headers.append((b"x-egress-request-id", x.request_id.encode()))
        await responder.start(status, headers)
        await responder.send(raw, more=False)

    async def _stream(
        self,
        x: Exchange,
        codec: ApiSpec,
        resp: UpstreamResponse,
        responder: Responder,
        watch: DisconnectWatch,
        translator: Translator | None,
    ) -> None:
        """Relay an event stream, event by event, restoring placeholders on the way.

        The answer is relayed only while it is the API's SSE (garbage is
        `upstream_protocol_error`), and it ends only with the API's terminal event: an upstream
        that closes before it (`upstream_truncated`) ends the client's stream with the API's
        error event, and a placeholder fragment still held back is dropped, never released
        raw. The response starts with the first event to send, so a failure before it is a
        status and the native error body; after it, the in-stream error event, then a clean end."""
        assert x.masked is not None
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
        upstream = observer if translation is None else upstream_spec(x.api, True).stream_observer(Usage())
        restorer: StreamRestorer | None = run_stage("restore", self.restorer.stream, x.api, x.masked.placeholders)
        # Before the restorer: an event it holds back and releases later already names the client's model.
        echo = _echo(x, codec)
        remember = restorer is not None and self.sessions.stateful(x)
        placeholders = x.masked.placeholders
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
            if echo is not None:
                events = [echo.event(raw) for raw in events]
            if restorer is not None:
                events = [restorer.feed(raw) for raw in events]
                if remember and saving is None and restorer.response_id is not None:
                    # Saved while the answer streams, so a follow-up can find it at once.
                    saving = asyncio.ensure_future(self.sessions.remember(x, restorer.response_id, placeholders))
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
                if echo is not None:
                    last = [echo.event(raw) for raw in last]
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


def _echo(x: Exchange, codec: ApiSpec) -> ModelEcho | None:
    """The client's model name for the answer, when model mapping sent the upstream another id."""
    if x.upstream_model is None or x.parsed is None or codec.model_echo is NO_ECHO:
        return None
    return ModelEcho(x.parsed.model, codec.model_echo.body, codec.model_echo.event)
