"""Checkpoint anchors: copies of the signed checkpoints kept outside the database.

A checkpoint in the database vouches for the chain up to its head, but whoever can write the
database can also delete the newest checkpoints together with the records after an older one,
and the rest still verifies. An anchor holds the same signed checkpoints somewhere the database's
writer cannot reach (another file, another disk, a WORM mount; later a SIEM): `audit verify`
then requires every anchored checkpoint to be in the database with the same head, and the chain
to reach the newest anchored head.

`CheckpointAnchor` is what the audit writer appends to (after the checkpoint is stored in the
database). `FileAnchor`, an append-only JSON Lines file, is the first implementation; its lines
are read back by `read_anchor` for verification. Each line is one checkpoint with every signed
field (`checkpoint_line`), so a line verifies alone with the public key.
"""

from __future__ import annotations

import fcntl
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

import orjson

from egress.core.records import Checkpoint

_FIELDS = frozenset(f.name for f in fields(Checkpoint))


class CheckpointAnchor(Protocol):
    """Somewhere outside the database that keeps every checkpoint the writer signs.

    `append` is called on the audit writer thread, after the checkpoint is stored, and must make
    it durable before it returns (raise on failure: the writer retries the newest one at the next
    occasion). A SIEM sink implements the same two methods."""

    @property
    def name(self) -> str: ...

    def append(self, checkpoint: Checkpoint) -> None: ...

    def close(self) -> None: ...


def checkpoint_line(cp: Checkpoint) -> bytes:
    """The checkpoint as one JSON line: every field, the signature included, keys sorted."""
    return orjson.dumps(asdict(cp), option=orjson.OPT_SORT_KEYS) + b"\n"


class AnchorLineError(ValueError):
    """An anchor line that is not a checkpoint."""


def parse_line(line: bytes) -> Checkpoint:
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise AnchorLineError("not JSON") from None
    if not isinstance(doc, dict) or set(doc) != _FIELDS:
        raise AnchorLineError(f"not a checkpoint (its fields must be {', '.join(sorted(_FIELDS))})")
    try:
        return Checkpoint(**doc)
    except TypeError as exc:
        raise AnchorLineError(str(exc)) from None


class FileAnchor:
    """An append-only file of checkpoints, one JSON line each, fsync'd after every line.

    The file is created (0600) when the anchor is opened, at gateway start, and the descriptor is
    kept: a file that is missing later was removed, which `audit verify` reports. Invariants for
    several processes appending to one file: it is opened O_APPEND, each line goes out in one
    write() while holding an exclusive flock (so lines never interleave, even beyond PIPE_BUF or
    on a filesystem where O_APPEND alone is not atomic), and a short or failed write is cut back
    to the length the file had before it, so no torn line stays behind (where the filesystem
    allows truncation; a WORM mount does not, and then verify reports the torn line)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self._file = os.fdopen(fd, "ab", buffering=0)  # closed with the object if close() is never called

    @property
    def name(self) -> str:
        return str(self.path)

    def append(self, checkpoint: Checkpoint) -> None:
        line = checkpoint_line(checkpoint)
        fd = self._file.fileno()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            before = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
                os.fsync(fd)
            except OSError:
                _cut_back(fd, before)
                raise
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()


def _cut_back(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass  # append-only storage: the torn line stays and verify names it


@dataclass(frozen=True, slots=True)
class AnchorLine:
    """Line `number` (from 1) of an anchor file: its checkpoint, or why it is not one."""

    number: int
    checkpoint: Checkpoint | None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class AnchorLog:
    """An anchor file as read for verification (`exists` False: there was no such file)."""

    path: Path
    lines: tuple[AnchorLine, ...]
    exists: bool = True


def read_anchor(path: Path) -> AnchorLog:
    """The anchor's lines; blank lines are skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return AnchorLog(path, (), exists=False)
    lines: list[AnchorLine] = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            lines.append(AnchorLine(number, parse_line(raw)))
        except AnchorLineError as exc:
            lines.append(AnchorLine(number, None, str(exc)))
    return AnchorLog(path, tuple(lines))
