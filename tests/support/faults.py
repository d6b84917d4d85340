"""Helpers for the fault-injection tests: requests that can be told apart upstream, the native
refusal they get, readiness, and the audit's write-ahead records matched to what upstream got."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from egress.store.base import SqlStore
from tests.support.simulator import UpstreamSimulator

# Statuses and codes a request may get while a store breaks: an answer, or a native refusal.
REFUSALS = {"audit_unavailable", "gateway_not_ready", "auth_unavailable"}


def body(n: int) -> dict[str, Any]:
    """A Messages request whose bytes upstream are unique to `n`."""
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": f"fault test request {n}"}],
    }


@dataclass(frozen=True)
class Answer:
    status: int
    code: str | None  # egress's error_code when it refused, else None
    request_id: str | None
    native: bool  # an Anthropic-shaped error (or a success)


def post(url: str, key: str, n: int, timeout: float = 30.0) -> Answer:
    r = httpx.post(
        url + "/v1/messages",
        json=body(n),
        headers={"x-egress-key": key, "anthropic-version": "2023-06-01"},
        timeout=timeout,
    )
    rid = r.headers.get("x-egress-request-id") or r.headers.get("request-id")
    if r.status_code == 200:
        return Answer(200, None, rid, True)
    try:
        doc = r.json()
    except ValueError:
        return Answer(r.status_code, None, rid, False)
    native = isinstance(doc, dict) and doc.get("type") == "error" and isinstance(doc.get("error"), dict)
    code = doc["error"].get("details", {}).get("error_code") if native else None
    return Answer(r.status_code, code, rid, native)


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    r = httpx.get(url + "/readyz", timeout=30)
    return r.status_code, r.json()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def records(store: SqlStore) -> list[dict[str, Any]]:
    return [orjson.loads(r.entry.canonical) for r in store.iter_audit()]


def egress_digests(rows: Iterable[dict[str, Any]]) -> set[str]:
    return {r["upstream_body_sha256"] for r in rows if r.get("type") == "egress"}


def received_digests(sim: UpstreamSimulator) -> list[str]:
    return [hashlib.sha256(r.body).hexdigest() for r in sim.received]


def outcomes(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each request's own record (not its egress records, not approval steps), by request id."""
    return {
        r["request_id"]: r
        for r in rows
        if r.get("type") != "egress" and not str(r.get("outcome") or "").startswith("approval")
    }
