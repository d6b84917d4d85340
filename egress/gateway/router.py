"""Where a request goes: its candidate endpoints, the failover among those the decision allowed,
and the upstream request built for each.

Invariants:
- only endpoints the validated decision allowed are tried, in the decision's order; one whose
  circuit is open is skipped;
- another endpoint is tried only while nothing has reached the client: after an unreachable or
  timed-out endpoint, or an overloaded answer (502/503/504/529) when a later one may be tried;
- each attempt's egress record is committed before its first byte leaves (`WriteAhead`);
- the gateway credential (`key_header`) never leaves: it is dropped from the forwarded headers;
- when none answers: `no_compliant_endpoint` if the policy narrowed the candidates (the others
  are not an option), else the endpoints' own error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from multidict import CIMultiDict

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.core.exchange import Exchange
from egress.gateway.offload import Offload
from egress.gateway.worker_pool import TopLevelFields
from egress.gateway.write_ahead import WriteAhead
from egress.mask.model_field import with_model
from egress.route.catalog import Catalog
from egress.route.health import Circuit, EndpointHealth
from egress.route.model_map import upstream_model
from egress.route.upstream import Target, UpstreamClient, UpstreamFailure, UpstreamResponse, upstream_headers
from egress.wire.apis import APIS, translator_for, upstream_api
from egress.wire.translate import Translator

log = logging.getLogger("egress.gateway")

# Upstream statuses after which another allowed endpoint is tried (nothing has reached the
# client yet): the endpoint is overloaded or broken, not the request.
_FAIL_OVER_STATUS = frozenset({502, 503, 504, 529})


@dataclass(frozen=True, slots=True)
class Routed:
    """The answering endpoint's response, and the translator when it speaks another API."""

    response: UpstreamResponse
    translator: Translator | None


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """What one attempt sends to one endpoint."""

    path: str
    headers: CIMultiDict[str]
    body: bytes
    translator: Translator | None
    model: str | None  # the model id sent, when model mapping made it differ from the client's
    query: str  # the query string sent: the client's, or the one a cloud's API takes


@dataclass(frozen=True, slots=True)
class Attempt:
    """An allowed endpoint that did not answer, and why (the error's machine-readable details)."""

    endpoint: str
    cause: str
    status: int | None = None

    def detail(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"endpoint": self.endpoint, "cause": self.cause}
        if self.status is not None:
            shown["status"] = self.status
        return shown


class Router:
    def __init__(
        self,
        *,
        catalog: Catalog,
        upstream: UpstreamClient,
        health: EndpointHealth,
        write_ahead: WriteAhead,
        offload: Offload,
    ) -> None:
        self.catalog = catalog
        self.upstream = upstream
        self.health = health
        self.write_ahead = write_ahead
        self._offload = offload  # a large body is translated off the event loop

    def candidates(self, x: Exchange) -> tuple[Endpoint, ...]:
        """The endpoints that serve the requested model over the client's API, or a translation."""
        assert x.parsed is not None
        candidates = self.catalog.candidates(x.api, x.parsed.model)
        if not candidates:
            # Endpoints that serve the model but speak neither the API nor one it translates to
            # (FIM on an OpenAI endpoint): named, so the client learns it is the API, not the model.
            serving = [e.name for e in self.catalog.endpoints if e.serves(x.parsed.model)]
            why = f": {', '.join(serving)} serve it but cannot answer {x.api.value}" if serving else ""
            raise EgressError(
                ErrorCode.NO_ROUTE,
                f"no configured provider endpoint serves {x.parsed.model!r} over the {x.api.family.value} API{why}",
            )
        return candidates

    async def send(self, x: Exchange, key_header: bytes | None) -> Routed:
        """Send to the first allowed endpoint that answers, in the decision's order."""
        assert x.decision is not None and x.masked is not None
        drop = frozenset({key_header}) if key_header else frozenset()
        last_error: EgressError | None = None
        # Each allowed endpoint that was not used, with why: the client's message lists them all.
        tried: list[str] = []
        attempts: list[Attempt] = []  # the same, machine-readable (the error's details)
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
                attempts.append(Attempt(name, "circuit_open"))
                continue
            if pending is not None:
                log.warning("%s; trying the next allowed one (%s)", pending, name)
                pending = None
            request = await self._request_for(x, endpoint, drop)
            _note_endpoint(x, endpoint, request.translator is not None, request.model)
            # Write-ahead: this attempt's egress record is committed before its first byte leaves.
            await self.write_ahead.commit(x, request.body)
            x.upstream_attempts += 1
            x.upstream_body = request.body
            t0 = time.perf_counter_ns()
            try:
                resp = await self.upstream.send(
                    endpoint, request.path, request.query, request.headers, request.body, x.request_id
                )
            except EgressError as err:
                if err.code not in (ErrorCode.UPSTREAM_UNAVAILABLE, ErrorCode.UPSTREAM_TIMEOUT):
                    if isinstance(err, UpstreamFailure):
                        log.warning("%s", _failure_line(err.target, err.log_detail, x.request_id))
                    raise
                self.health.failed(name)
                last_error = err
                attempts.append(Attempt(name, err.details.get("cause", err.code.value)))
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
                attempts.append(Attempt(name, "http_status", resp.status))
                pending = _failure_line(self.upstream.target(endpoint), f"answered HTTP {resp.status}", x.request_id)
                continue
            if resp.status >= 500:
                self.health.failed(name)
            else:
                self.health.succeeded(name)
            return Routed(resp, request.translator)
        if pending is not None:
            log.warning("%s; no allowed endpoint is left to try", pending)
        details = {"attempts": [attempt.detail() for attempt in attempts]}
        if set(allowed) != set(x.candidates):  # the policy excluded some: they are no fallback
            raise EgressError(
                ErrorCode.NO_COMPLIANT_ENDPOINT,
                f"no endpoint that the policy allows for this request is reachable ({'; '.join(tried)}); "
                "it was not sent anywhere else",
                stage="route",
                details=details,
            )
        if last_error is not None and len(tried) == 1:
            raise last_error  # one endpoint: its own message names it and the cause
        code = last_error.code if last_error is not None else ErrorCode.UPSTREAM_UNAVAILABLE
        # Every one skipped for its open circuit: nothing was tried, so none "could not be reached".
        outcome = "could be reached" if last_error is not None else "was tried"
        raise EgressError(code, f"no allowed endpoint {outcome}: {'; '.join(tried)}", details=details)

    async def _request_for(self, x: Exchange, endpoint: Endpoint, drop: frozenset[bytes]) -> UpstreamRequest:
        """The masked request as this endpoint takes it: in its API (translated if need be), on
        its path, with its credential instead of the client's gateway key."""
        assert x.masked is not None
        upstream = upstream_api(endpoint.api, x.api)
        if upstream is None:
            raise EgressError(
                ErrorCode.STAGE_FAILED, f"endpoint {endpoint.name!r} cannot answer {x.api.value}", stage="route"
            )
        translator = translator_for(x.api, upstream)  # None: the endpoint speaks the client's API
        body = x.masked.body
        # Model mapping: the endpoint's own id for the client's model, translated or not.
        client_model = x.parsed.model if x.parsed is not None else ""
        model = upstream_model(endpoint, client_model) if client_model else endpoint.upstream_model
        # Where the API names the model in the path (Gemini), the endpoint's own model name.
        path = APIS[upstream].path_for(model if model is not None else client_model)
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
            body = await self._offload.run(len(body), "translate", request_body, body, model)
        cloud = self.upstream.clouds.get(endpoint)  # a cloud's own API: the model goes in its path
        in_place = translator is None and cloud is None and not APIS[upstream].model_in_path
        if in_place and model is not None and model != client_model:
            # In place: only the `model` literal changes; the rest leaves as the agent wrote it.
            mapped = await self._offload.run(len(body), "map_model", with_model, body, model)
            if mapped is None:
                raise EgressError(
                    ErrorCode.INVALID_REQUEST,
                    "model: write the top-level `model` key without escapes (this endpoint maps model names)",
                )
            body = mapped
        sent = model if model is not None and model != client_model else None
        headers, query = upstream_headers(x.headers, endpoint, drop), x.query
        if cloud is not None:  # Bedrock, Vertex: their path (the model id in it) and body mapping
            stream = x.parsed is not None and x.parsed.stream
            target = model if model is not None else client_model
            prepared = await self._offload.run(len(body), "route", cloud.prepare, target, stream, body, headers)
            path, query, body = prepared.path, prepared.query, prepared.body
        return UpstreamRequest(path, headers, body, translator, sent, query)

    def _another_to_try(self, rest: tuple[str, ...]) -> bool:
        """Is an overloaded answer worth dropping? Only if a later allowed endpoint may be tried."""
        return any(self.health.circuit(name) is not Circuit.OPEN for name in rest)


def _failure_line(target: Target, detail: str, request_id: str) -> str:
    """A failed endpoint, for the server log: name, host and port, cause. Never the URL (userinfo,
    query secrets) nor a header."""
    return f"endpoint {target.name} ({target.address}) failed: {detail} (request {request_id})"


def _note_endpoint(x: Exchange, endpoint: Endpoint, translated: bool, model: str | None) -> None:
    x.endpoint_name = endpoint.name
    x.upstream_model = model
    x.endpoint_jurisdiction = endpoint.jurisdiction
    x.endpoint_region = endpoint.region
    x.translated_from = x.api if translated else None
