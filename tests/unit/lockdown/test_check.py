"""`egress lockdown check`'s probes, on real loopback sockets: what counts as reachable, what the
report says, and its exit status. (Blocked-by-firewall is tested for real in
tests/integration/test_lockdown_nftables.py.)"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from egress.lockdown.check import CheckReport, GatewayProbe, Probe, _connect, _handshake, ping_gateway, probe
from egress.lockdown.hosts import ProviderHost
from tests.support.tls import make_test_ca


def host(name: str, port: int = 443, **kw) -> ProviderHost:
    return ProviderHost(
        name=name, port=port, origins=("catalog:x",), gateway_may_reach=False, clients_may_reach=False, **kw
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_connect_reports_open_refused_and_the_first_address_that_answers():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        outcome, writer = await _connect(("127.0.0.1",), port, time.monotonic() + 2)
        assert outcome == "connected" and writer is not None
        writer.close()
        outcome, writer = await _connect(("127.0.0.1",), closed_port(), time.monotonic() + 2)
        assert (outcome, writer) == ("refused", None)


async def test_handshake_sends_no_request_and_reports_an_untrusted_certificate(tmp_path):
    ca = make_test_ca(tmp_path)
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.append(await reader.read(65536))  # empty: the client sent nothing after the handshake
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ca.server_context())
    port = server.sockets[0].getsockname()[1]
    async with server:
        _, writer = await _connect(("127.0.0.1",), port, time.monotonic() + 2)
        assert writer is not None
        result = await _handshake(writer, "api.example.com", time.monotonic() + 2)
        writer.close()
        await asyncio.sleep(0.1)
    # The system trust store does not know the test CA: the handshake fails, and that is reported
    # (an intercepting proxy looks the same); the TCP connection alone already counts as a way out.
    assert result == "failed: SSLCertVerificationError"
    assert received in ([], [b""])


async def test_patterns_and_loopback_are_not_probed_and_a_name_that_does_not_resolve_is_blocked():
    assert (await probe(host("*.example.com"), 1)).verdict == "not probed"
    assert (await probe(host("127.0.0.1", 8000), 1)).verdict == "not probed"
    missing = await probe(host("no-such-provider.invalid"), 2)
    assert missing.verdict == "blocked" and missing.addresses == () and missing.tcp == "not tried"
    assert missing.seconds <= 2.5


async def test_gateway_ping_reads_the_status_line():
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        status = b"200 OK" if request.startswith(b"GET /readyz ") else b"404 Not Found"
        writer.write(b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        assert (await ping_gateway(f"http://127.0.0.1:{port}", 2)).status == 200
    down = await ping_gateway(f"http://127.0.0.1:{closed_port()}", 2)
    assert down.status is None and not down.ready


def probe_row(verdict: str) -> Probe:
    return Probe("h", 443, (), "blocked", (), "ok", "timeout", "not tried", verdict, 0.1)


@pytest.mark.parametrize(
    ("verdicts", "gateway", "code"),
    [
        (["blocked", "not probed"], GatewayProbe("u", 200, "HTTP/1.1 200 OK"), 0),
        (["blocked", "REACHABLE"], GatewayProbe("u", 200, "HTTP/1.1 200 OK"), 1),
        (["blocked"], GatewayProbe("u", None, "timeout"), 3),
        (["allowed"], None, 0),
    ],
)
def test_exit_status(verdicts, gateway, code):
    report = CheckReport("sha256:x", "2026-01-15", tuple(probe_row(v) for v in verdicts), gateway, 0.2)
    assert report.exit_code == code
    assert report.to_json()["ok"] is (code == 0)


async def test_every_address_of_a_host_is_tried_not_only_the_first():
    """A host whose first address drops connections but whose second answers is reachable: the
    dropped one must not use up the deadline. The drop is real: a listening socket whose accept
    queue is full (never accepted) silently drops new SYNs."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    port = blackhole.getsockname()[1]
    fillers = []
    for _ in range(4):  # fill the accept queue; later connects hang (the kernel drops their SYNs)
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    await asyncio.sleep(0.2)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.2", port)
    try:
        async with server:
            dropped, _ = await _connect(("127.0.0.1",), port, time.monotonic() + 1)
            assert dropped == "timeout"
            # Tried one after the other, the first would use up the deadline: "timeout".
            outcome, writer = await _connect(("127.0.0.1", "127.0.0.2"), port, time.monotonic() + 3)
            assert outcome == "connected" and writer is not None
            writer.close()
    finally:
        for filler in fillers:
            filler.close()
        blackhole.close()
