"""A large body carried between the gateway and a worker process in an anonymous in-memory file.

Pickling a 30 MB body into the worker pool's pipe copies it with the GIL held (and faults in a
fresh buffer for it), tens of milliseconds on a busy machine; reading one back does the same.
A memfd is written and read with os.write/os.pread, which release the GIL for the whole copy.
Linux only, like the rest of the worker pool.

Invariants:
- The file has no name in any filesystem and lives in memory; it is gone once its last
  descriptor closes.
- A worker opens it through /proc/<gateway>/fd/<n>, and checks the file's random name first.
  The descriptor it opens stays open in the gateway until the worker's job is over, so its
  number is never reused for another request's file while a worker may still open it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Handle:
    """How a worker finds a body's file in the gateway: its process, descriptor, name and size."""

    pid: int
    fd: int
    name: str
    size: int


class BodyFile:
    """The gateway's side. Blocking (it copies the body): call it off the event loop."""

    def __init__(self, body: bytes) -> None:
        name = "egress-body-" + secrets.token_hex(8)
        self._fd = os.memfd_create(name, os.MFD_CLOEXEC)
        try:
            _write_all(self._fd, body)
            # The descriptor the worker opens; closed by `release` when its job is over.
            self._shared = os.dup(self._fd)
        except BaseException:
            os.close(self._fd)
            raise
        self.handle = Handle(os.getpid(), self._shared, name, len(body))

    def release(self) -> None:
        """The worker's job is over (done, failed or never run): its descriptor may go."""
        os.close(self._shared)

    def read(self, offset: int, size: int) -> bytes:
        """A part of what the worker wrote back (`write_back`)."""
        return _read_all(self._fd, size, offset)

    def close(self) -> None:
        os.close(self._fd)


def read_in_worker(handle: Handle) -> bytes:
    fd = _open(handle)
    try:
        return _read_all(fd, handle.size)
    finally:
        os.close(fd)


def write_back(handle: Handle, parts: list[bytes]) -> None:
    """Replace the file's content with `parts`, one after the other (a worker's result for the
    gateway to read)."""
    fd = _open(handle)
    try:
        os.ftruncate(fd, 0)
        offset = 0
        for part in parts:
            _write_all(fd, part, offset)
            offset += len(part)
    finally:
        os.close(fd)


def _open(handle: Handle) -> int:
    path = f"/proc/{handle.pid}/fd/{handle.fd}"
    if os.readlink(path) != f"/memfd:{handle.name} (deleted)":
        raise RuntimeError("the shared body file is not this request's")
    return os.open(path, os.O_RDWR | os.O_CLOEXEC)


def _write_all(fd: int, data: bytes, at: int = 0) -> None:
    view = memoryview(data)
    done = 0
    while done < len(view):
        done += os.pwrite(fd, view[done:], at + done)


def _read_all(fd: int, size: int, at: int = 0) -> bytes:
    data = os.pread(fd, size, at)
    if len(data) == size:  # one call reads a memfd whole
        return data
    parts = [data]
    done = len(data)
    while done < size:
        part = os.pread(fd, size - done, at + done)
        if not part:
            raise RuntimeError(f"the shared body file ended at {at + done}, short of {at + size}")
        parts.append(part)
        done += len(part)
    return b"".join(parts)
