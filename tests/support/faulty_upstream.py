"""Upstreams that fail the way real ones do, on real loopback sockets: one that accepts and never
answers, one that hangs up after reading the request, one that closes in the middle of its answer,
and one whose connections never complete (a full accept queue)."""

from __future__ import annotations

import socket
import struct
import threading
from enum import StrEnum


class Fault(StrEnum):
    SILENT = "silent"  # reads the request, never answers, keeps the connection open
    HANG_UP = "hang_up"  # reads the request, closes without a byte
    CUT_BODY = "cut_body"  # answers 200 with Content-Length 1000, sends 20 bytes, closes
    RESET = "reset"  # reads the request, then resets the connection (RST: SO_LINGER 0)


_CUT_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n" + b'{"id":"msg_cut","type"'
)


def _read_request(conn: socket.socket) -> None:
    """Headers, then as many body bytes as Content-Length says."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


class FaultyUpstream:
    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.requests = 0
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = int(self._sock.getsockname()[1])
        self._open: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"faulty-{fault}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultyUpstream:
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            _read_request(conn)
            self.requests += 1
            if self.fault is Fault.SILENT:
                self._open.append(conn)  # closed by stop()
                return
            if self.fault is Fault.CUT_BODY:
                conn.sendall(_CUT_ANSWER)
            if self.fault is Fault.RESET:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        except OSError:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self._sock.close()
        for conn in self._open:
            conn.close()
        self._thread.join(5)


class FullBacklog:
    """A listening socket that never accepts, its one-slot accept queue filled: the kernel drops
    further SYNs, so a connect attempt hangs until the client's connect timeout."""

    def __init__(self) -> None:
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(0)
        self.port = int(self._sock.getsockname()[1])
        self._filler = socket.create_connection(("127.0.0.1", self.port), timeout=5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._filler.close()
        self._sock.close()
