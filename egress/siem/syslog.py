"""Syslog sink: RFC 5424 messages over TCP with octet-counted framing (RFC 6587 §3.4.1), over
TLS (RFC 5425) unless configured off.

One message per record:
    <PRI>1 TIMESTAMP HOSTNAME APP-NAME - audit [egress@32473 seq="N" hash="H" prev="P"] BOM RECORD
PRI is facility*8 + 6 (informational); TIMESTAMP is the record's own time; the structured data
carries the record's place in the chain; MSG is the UTF-8 BOM and the canonical record, verbatim.
(32473 is the private enterprise number RFC 5612 reserves for examples: set none of ours.)

Acknowledgement: syslog has none of its own. A batch is sent on its own TLS connection that is
then closed with close_notify; the send counts as acknowledged only when the receiver answered
with its close_notify, which it can only do after reading every byte before it. Without TLS the
acknowledgement is the peer closing its side after our FIN (best effort: prefer TLS)."""

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
        try:
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=self._ssl,
                server_hostname=self._server_name if self._ssl is not None else None,
                ssl_handshake_timeout=self._timeout_s if self._ssl is not None else None,
                ssl_shutdown_timeout=self._timeout_s if self._ssl is not None else None,
            )
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"syslog {self._host}:{self._port}: cannot connect ({type(exc).__name__}: {exc})") from exc
        try:
            writer.write(payload)
            await writer.drain()
            if self._ssl is None:
                writer.write_eof()
                await reader.read()  # the peer's FIN: it read up to ours
            writer.close()
            await writer.wait_closed()  # TLS: returns once the peer's close_notify arrived
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            writer.transport.abort()
            raise SinkError(f"syslog {self._host}:{self._port}: batch not acknowledged ({type(exc).__name__})") from exc

    async def close(self) -> None:
        return None
