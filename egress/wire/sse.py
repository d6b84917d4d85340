"""Server-sent events framing, sans-IO.

`SseDecoder` cuts an upstream byte stream into whole events *without changing a byte*: each
event is returned as the exact bytes it arrived as, blank-line terminator included, so an event
nobody rewrites is relayed byte-identical. Line endings may be LF, CRLF or CR, and a chunk may
end anywhere: inside a line, between CR and LF, inside a multi-byte UTF-8 character.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# SSE lines end in CRLF, LF or CR only (str.splitlines would also split on \x1c, \x85, U+2028, …).
_LINE_END = re.compile(r"\r\n|\r|\n")
_CR = 0x0D
_LF = 0x0A


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event as received. `event`/`data` are parsed from `raw` per the WHATWG rules."""

    raw: bytes
    event: str | None
    data: str | None  # several data lines joined with "\n"; None when the event had no data line
    comment_only: bool

    @classmethod
    def parse(cls, raw: bytes) -> SseEvent:
        event: str | None = None
        data_lines: list[str] = []
        saw_field = False
        text = raw.decode("utf-8", errors="replace")
        for line in _LINE_END.split(text):
            if not line:
                continue
            if line.startswith(":"):
                continue
            saw_field = True
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "event":
                event = value
            elif name == "data":
                data_lines.append(value)
        return cls(
            raw=raw,
            event=event,
            data="\n".join(data_lines) if data_lines else None,
            comment_only=not saw_field,
        )


class SseDecoder:
    """Incremental framer: `feed(chunk)` returns the raw bytes of every event completed by it."""

    __slots__ = ("_buf", "_scan_from")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scan_from = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        buf = self._buf
        buf += chunk
        events: list[bytes] = []
        start = 0
        if _CR not in buf:
            # Fast path (every provider today): events end with LF LF.
            pos = self._scan_from
            while True:
                end = buf.find(b"\n\n", max(pos, start))
                if end < 0:
                    break
                events.append(bytes(buf[start : end + 2]))
                start = end + 2
                pos = start
        else:
            start = self._split_general(events)
        if start:
            del buf[:start]
        # Resume the next scan one byte back: a terminator may straddle two chunks.
        self._scan_from = max(len(buf) - 1, 0)
        return events

    def _split_general(self, events: list[bytes]) -> int:
        """Split on a blank line with any mix of CR, LF and CRLF line endings."""
        buf = self._buf
        n = len(buf)
        start = 0
        i = 0
        line_start = True  # position i is at the start of a line
        while i < n:
            b = buf[i]
            if b == _CR or b == _LF:
                # A terminator is CRLF, LF or CR. A CR as the last byte may still become CRLF.
                if b == _CR and i + 1 == n:
                    break
                term_end = i + 2 if (b == _CR and buf[i + 1] == _LF) else i + 1
                if line_start and i > start:
                    events.append(bytes(buf[start:term_end]))
                    start = term_end
                elif line_start and i == start:
                    # A stray terminator before any field: part of nothing; keep it with the next event.
                    pass
                line_start = True
                i = term_end
                continue
            line_start = False
            i += 1
        self._scan_from = 0
        return start

    def finish(self) -> bytes:
        """Bytes left after the stream ended (an unterminated last event), returned unchanged."""
        rest = bytes(self._buf)
        self._buf.clear()
        self._scan_from = 0
        return rest


def encode_event(event: str | None, data: bytes) -> bytes:
    """Render one event the way providers do: `event:` line (if any), one `data:` line, blank line."""
    if event is None:
        return b"data: " + data + b"\n\n"
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


class SseProtocolError(ValueError):
    """Bytes that are not a server-sent event (an HTML page under text/event-stream, say)."""


# The fields of the SSE grammar. A line that is none of them (and not a comment) is no SSE that
# any provider sends: the stream is garbage, not an event to skip.
_KNOWN_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BARE_FIELDS = frozenset({b"data", b"event", b"id", b"retry"})


def event_data(raw: bytes) -> bytes | None:
    """The data of one whole event (several `data:` lines joined with LF), None when it has none
    (a comment, or only `event:`/`id:`/`retry:`). Raises SseProtocolError for a line that belongs
    to no SSE field."""
    n = len(raw)
    if _CR not in raw and raw.endswith(b"\n\n"):
        # Fast path (every provider): `data: D` or `event: E` + `data: D`, one line each.
        start = 0
        if raw.startswith(b"event: "):
            start = raw.find(b"\n") + 1
        if raw.startswith(b"data: ", start):
            end = raw.find(b"\n", start)
            if end == n - 2:
                return raw[start + 6 : end]
    text = raw if _CR not in raw else raw.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    data: list[bytes] = []
    for line in text.split(b"\n"):
        if not line:
            continue
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif not line.startswith(_KNOWN_FIELDS) and line not in _BARE_FIELDS:
            raise SseProtocolError(f"a line that is no SSE field ({len(line)} bytes)")
    if not data:
        return None
    return data[0] if len(data) == 1 else b"\n".join(data)


def data_span(raw: bytes) -> tuple[int, int] | None:
    """Where the payload of the event's one `data:` line lies in `raw`; None when the event has
    no data line or several (multi-line data is left as it is by whoever edits in place)."""
    start = raw.find(b"data:")
    if start < 0 or (start > 0 and raw[start - 1] not in b"\r\n"):
        return None
    start += 5
    if start < len(raw) and raw[start] == 0x20:
        start += 1
    end = raw.find(b"\n", start)
    if end < 0:
        end = len(raw)
    if end > start and raw[end - 1] == 0x0D:
        end -= 1
    if raw.find(b"data:", end) >= 0:
        return None
    return start, end
