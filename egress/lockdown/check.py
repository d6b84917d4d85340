"""`egress lockdown check`: from where it runs, can a provider be reached without the gateway?

For each provider host: DNS, then a TCP connection, then (for TLS hosts) a TLS handshake with the
host's name — never a request, never a byte of a prompt. All hosts at once, each within one
deadline (`lockdown.check_timeout_s`), so the whole check takes about one timeout.

Invariants:
- A host counts as reachable when a TCP connection to any of its addresses opens: that alone is a
  way around the gateway, whatever happens in TLS after it (an intercepting proxy, a bad clock).
- A provider host reachable from here makes the check fail, except the hosts of tools the
  configuration allows; a pattern (`*.domain`) or a loopback host cannot be probed and is reported
  as such, never as blocked.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from egress.lockdown.hosts import LockdownPlan, ProviderHost
from egress.lockdown.resolve import lookup

_MAX_ADDRESSES = 16  # addresses of one host tried at once


@dataclass(frozen=True, slots=True)
class Probe:
    host: str
    port: int
    origins: tuple[str, ...]
    expected: str  # "blocked", or "allowed" for an allowed tool's host
    addresses: tuple[str, ...]
    dns: str  # "ok", "timeout", the resolver's error, or "literal"
    tcp: str  # "connected", "refused", "timeout", "unreachable: …", or "not tried"
    tls: str  # "handshake", "failed: …", "not tried", or "plain http"
    verdict: str  # "blocked", "REACHABLE", "allowed", "not probed"
    seconds: float

    @property
    def leaks(self) -> bool:
        return self.verdict == "REACHABLE"


@dataclass(frozen=True, slots=True)
class GatewayProbe:
    url: str
    status: int | None
    detail: str

    @property
    def ready(self) -> bool:
        return self.status == 200


@dataclass(frozen=True, slots=True)
class CheckReport:
    revision: str
    catalog_date: str
    probes: tuple[Probe, ...]
    gateway: GatewayProbe | None
    seconds: float

    @property
    def leaks(self) -> tuple[Probe, ...]:
        return tuple(p for p in self.probes if p.leaks)

    @property
    def exit_code(self) -> int:
        """0: every provider blocked (and the gateway ready, if asked); 1: a provider reachable
        directly; 3: nothing leaks but the gateway is not reachable."""
        if self.leaks:
            return 1
        if self.gateway is not None and not self.gateway.ready:
            return 3
        return 0

    def to_json(self) -> dict[str, Any]:
        return {
            "configuration_revision": self.revision,
            "catalog": self.catalog_date,
            "ok": self.exit_code == 0,
            "reachable_directly": [p.host for p in self.leaks],
            "gateway": asdict(self.gateway) if self.gateway else None,
            "seconds": round(self.seconds, 3),
            "hosts": [asdict(p) for p in self.probes],
        }


def run_check(plan: LockdownPlan, gateway_url: str | None, timeout_s: float | None = None) -> CheckReport:
    return asyncio.run(check(plan, gateway_url, timeout_s or plan.settings.check_timeout_s))


async def check(plan: LockdownPlan, gateway_url: str | None, timeout_s: float) -> CheckReport:
    started = time.monotonic()
    probes = asyncio.gather(*(probe(host, timeout_s) for host in plan.hosts))
    gateway = ping_gateway(gateway_url, timeout_s) if gateway_url else None
    results = await probes
    gateway_result = await gateway if gateway is not None else None
    return CheckReport(plan.revision, plan.catalog_date, tuple(results), gateway_result, time.monotonic() - started)


async def probe(host: ProviderHost, timeout_s: float) -> Probe:
    started = time.monotonic()
    expected = "allowed" if host.clients_may_reach else "blocked"

    def done(addresses: tuple[str, ...], dns: str, tcp: str, tls: str, verdict: str) -> Probe:
        return Probe(
            host.name,
            host.port,
            host.origins,
            expected,
            addresses,
            dns,
            tcp,
            tls,
            verdict,
            round(time.monotonic() - started, 3),
        )

    if host.is_pattern or host.is_loopback:
        return done((), "not tried", "not tried", "not tried", "not probed")
    deadline = started + timeout_s
    addresses: tuple[str, ...]
    if host.is_literal:
        addresses, dns = (host.name,), "literal"
    else:
        found = await lookup(host.name, timeout_s)
        addresses, dns = found.addresses, found.error or "ok"
    if not addresses:
        return done((), dns, "not tried", "not tried", "blocked")
    tcp, writer = await _connect(addresses, host.port, deadline)
    if writer is None:
        return done(addresses, dns, tcp, "not tried", "blocked")
    try:
        tls = await _handshake(writer, host.name, deadline) if host.tls else "plain http"
    finally:
        writer.close()
    verdict = "allowed" if host.clients_may_reach else "REACHABLE"
    return done(addresses, dns, tcp, tls, verdict)


async def _connect(addresses: tuple[str, ...], port: int, deadline: float) -> tuple[str, asyncio.StreamWriter | None]:
    """A connection to any of the addresses, all tried at once until the deadline (a ruleset that
    drops one address of a host must not hide another that answers); else why none did."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return "timeout", None
    attempts = [asyncio.ensure_future(asyncio.open_connection(a, port)) for a in addresses[:_MAX_ADDRESSES]]
    outcomes: list[str] = []
    winner: asyncio.StreamWriter | None = None
    try:
        for next_done in asyncio.as_completed(attempts, timeout=remaining):
            try:
                _, writer = await next_done
            except TimeoutError:  # the deadline (an OSError too: caught before the others)
                outcomes.append("timeout")
                break
            except ConnectionRefusedError:
                outcomes.append("refused")
            except OSError as exc:
                outcomes.append(f"unreachable: {exc.strerror or type(exc).__name__}")
            else:
                winner = writer
                break
    finally:
        for attempt in attempts:
            if not attempt.done():
                attempt.cancel()
            elif not attempt.cancelled() and attempt.exception() is None and attempt.result()[1] is not winner:
                attempt.result()[1].close()
    if winner is not None:
        return "connected", winner
    # The most telling outcome: a timeout (dropped) over a refusal over an unreachable network.
    for kind in ("timeout", "refused"):
        if kind in outcomes:
            return kind, None
    return (outcomes[0] if outcomes else "timeout"), None


async def _handshake(writer: asyncio.StreamWriter, name: str, deadline: float) -> str:
    """A TLS handshake on the open connection with `name` as SNI; nothing is sent after it."""
    context = ssl.create_default_context()
    try:
        await asyncio.wait_for(writer.start_tls(context, server_hostname=name), max(deadline - time.monotonic(), 0.01))
    except TimeoutError:
        return "failed: timeout"
    except (ssl.SSLError, OSError) as exc:
        return f"failed: {type(exc).__name__}"
    return "handshake"


async def ping_gateway(url: str, timeout_s: float) -> GatewayProbe:
    """GET /readyz on the gateway: can clients here reach it?"""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    context = ssl.create_default_context() if parts.scheme == "https" else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None), timeout_s
        )
    except TimeoutError:
        return GatewayProbe(url, None, "timeout")
    except OSError as exc:
        return GatewayProbe(url, None, exc.strerror or type(exc).__name__)
    try:
        writer.write(f"GET /readyz HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout_s)
    except (TimeoutError, OSError) as exc:
        return GatewayProbe(url, None, type(exc).__name__)
    finally:
        writer.close()
    fields = line.decode("latin-1").split()
    status = int(fields[1]) if len(fields) >= 2 and fields[1].isdigit() else None
    return GatewayProbe(url, status, line.decode("latin-1").strip())
