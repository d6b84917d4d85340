"""Syslog sink: RFC 5424 messages over TCP with octet-counted framing (RFC 6587 §3.4.1), over
TLS (RFC 5425) unless configured off.

One message per record:
    <PRI>1 TIMESTAMP HOSTNAME APP-NAME - audit [egress@32473 seq="N" hash="H" prev="P"] BOM RECORD
PRI is facility*8 + 6 (informational); TIMESTAMP is the record's own time; the structured data
carries the record's place in the chain; MSG is the UTF-8 BOM and the canonical record, verbatim.
(32473 is the private enterprise number RFC 5612 reserves for examples: set none of ours.)

Acknowledgement: syslog has none of its own. A batch is sent on its own TLS connection that is
then closed with close_notify; the send counts as acknowledged only when the receiver answered
with its close_notify, which it can only do after reading every byte before it (a TLS alert, a
reset or a TCP close without close_notify is a failure, and the batch is sent again). Without
TLS the acknowledgement is the peer closing its side after our FIN (best effort: prefer TLS)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Sequence

from egress.core.records import StoredAudit
from egress.siem.document import rfc3339
from egress.siem.settings import SyslogSink
from egress.siem.sink import SinkError
from egress.siem.tls import client_context

SEVERITY_INFORMATIONAL = 6
SD_ID = b"egress@32473"
BOM = b"\xef\xbb\xbf"


def message(stored: StoredAudit, pri: int, hostname: bytes, app_name: bytes) -> bytes:
    """One RFC 5424 message (without its frame)."""
    return b'<%d>1 %s %s %s - audit [%s seq="%d" hash="%s" prev="%s"] %s%s' % (
        pri,
        rfc3339(stored.entry.ts).encode("ascii"),
        hostname,
        app_name,
        SD_ID,
        stored.seq,
        stored.hash.encode("ascii"),
        stored.prev_hash.encode("ascii"),
        BOM,
        stored.entry.canonical,
    )


def frame(msg: bytes) -> bytes:
    """Octet counting: the length in decimal, a space, the message."""
    return b"%d %s" % (len(msg), msg)


def _send_plain(sock: socket.socket, payload: bytes) -> None:
    """Without TLS: send, half-close, and wait for the peer to close its side (best effort: it
    may close without having read everything; prefer TLS)."""
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    while sock.recv(4096):
        pass


def _printable(value: str, limit: int) -> bytes:
    """A header field: printable US-ASCII without spaces, at most `limit` octets, '-' when empty."""
    cleaned = "".join(c for c in value if 33 <= ord(c) <= 126)[:limit]
    return (cleaned or "-").encode("ascii")


class SyslogTcpSink:
    def __init__(self, settings: SyslogSink) -> None:
        self.name = settings.name
        self._host, self._port = settings.host_port
        self._ssl: ssl.SSLContext | None = (
            client_context(settings.ca_file, settings.client_cert_file, settings.client_key_file)
            if settings.tls
            else None
        )
        self._server_name = settings.server_name or self._host
        self._pri = settings.facility * 8 + SEVERITY_INFORMATIONAL
        self._hostname = _printable(settings.hostname or socket.gethostname(), 255)
        self._app = _printable(settings.app_name, 48)
        self._timeout_s = settings.delivery.timeout_s

    def encode(self, batch: Sequence[StoredAudit]) -> bytes:
        pri, host, app = self._pri, self._hostname, self._app
        return b"".join(frame(message(s, pri, host, app)) for s in batch)

    async def send(self, payload: bytes, count: int) -> None:
        # A blocking socket in a thread: the TLS shutdown below must see the peer's close_notify
        # (asyncio's TLS transport also ends "cleanly" when the peer only closes its TCP side).
        await asyncio.to_thread(self._send_blocking, payload)

    def _send_blocking(self, payload: bytes) -> None:
        where = f"syslog {self._host}:{self._port}"
        try:
            raw = socket.create_connection((self._host, self._port), timeout=self._timeout_s)
        except OSError as exc:
            raise SinkError(f"{where}: cannot connect ({type(exc).__name__}: {exc})") from exc
        try:
            if self._ssl is None:
                _send_plain(raw, payload)
                return
            try:
                tls = self._ssl.wrap_socket(raw, server_hostname=self._server_name)
            except (OSError, ssl.SSLError) as exc:
                raise SinkError(f"{where}: TLS handshake failed ({type(exc).__name__}: {exc})") from exc
            try:
                tls.sendall(payload)
                # Sends our close_notify and returns only once the peer's arrived: it has read
                # every byte before it. An alert, a reset or a bare FIN raise instead.
                tls.unwrap()
            finally:
                tls.close()
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"{where}: batch not acknowledged ({type(exc).__name__}: {exc})") from exc
        finally:
            raw.close()

    async def close(self) -> None:
        return None
