"""AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), sans-IO.

Bedrock's InvokeModelWithResponseStream answers in it. One message is

    [total length u32][headers length u32][prelude CRC32 u32][headers][payload][message CRC32 u32]

with big-endian integers; the prelude CRC covers bytes 0-7, the message CRC everything before
it. A header is `[name length u8][name][type u8][value]`; the value's shape is given by its type
(`HeaderType`). Both CRCs are zlib's CRC32.

Invariants:
- `EventStreamDecoder` returns a message only once all of its bytes arrived and both CRCs match:
  a frame with a bad CRC, an impossible length or an unknown header type is refused with an
  `EventStreamError` that says which check failed and where, never returned in part;
- decoding does not depend on how the bytes were cut into chunks;
- `encode_message(decode(x)) == x` for every well-formed frame, and the reverse.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum

_PRELUDE = struct.Struct(">II")  # total length, headers length
_PRELUDE_CRC = struct.Struct(">III")  # the same and the prelude's CRC
_U32 = struct.Struct(">I")
_PRELUDE_LEN = 12  # the two lengths and the prelude CRC
_MIN_MESSAGE = _PRELUDE_LEN + 4  # no headers, no payload, the message CRC
# botocore's own bounds: a frame larger than these is refused, not buffered.
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024


class EventStreamError(ValueError):
    """A frame that is not well-formed event-stream: the message says which check failed."""


class HeaderType(IntEnum):
    BOOL_TRUE = 0
    BOOL_FALSE = 1
    BYTE = 2
    SHORT = 3
    INTEGER = 4
    LONG = 5
    BYTES = 6
    STRING = 7
    TIMESTAMP = 8  # milliseconds since the epoch, int64
    UUID = 9  # 16 bytes


_INT_FORMATS: dict[HeaderType, struct.Struct] = {
    HeaderType.BYTE: struct.Struct(">b"),
    HeaderType.SHORT: struct.Struct(">h"),
    HeaderType.INTEGER: struct.Struct(">i"),
    HeaderType.LONG: struct.Struct(">q"),
    HeaderType.TIMESTAMP: struct.Struct(">q"),
}
_U16 = struct.Struct(">H")

HeaderValue = bool | int | bytes | str


@dataclass(frozen=True, slots=True)
class Header:
    """One header. `value` is a bool (types 0/1), an int (2-5, 8), bytes (6, and 9: 16 bytes) or
    a str (7); the type is kept so that a message encodes back to the bytes it came from."""

    name: str
    type: HeaderType
    value: HeaderValue

    @classmethod
    def string(cls, name: str, value: str) -> Header:
        return cls(name, HeaderType.STRING, value)


@dataclass(frozen=True, slots=True)
class Message:
    headers: tuple[Header, ...]
    payload: bytes

    def header(self, name: str) -> str | None:
        """A string header's value (None when absent or not a string)."""
        for h in self.headers:
            if h.name == name and isinstance(h.value, str):
                return h.value
        return None


# --- encoding -------------------------------------------------------------------------------------


def _encode_header(header: Header) -> bytes:
    name = header.name.encode("utf-8")
    if not 0 < len(name) < 256:
        raise EventStreamError(f"header name {header.name!r} must be 1 to 255 bytes of UTF-8")
    out = bytearray((len(name),))
    out += name
    kind, value = header.type, header.value
    if kind in (HeaderType.BOOL_TRUE, HeaderType.BOOL_FALSE):
        if value is not (kind is HeaderType.BOOL_TRUE):
            raise EventStreamError(f"header {header.name!r}: type {kind.name} holds {value!r}")
        out.append(kind)
    elif kind in _INT_FORMATS:
        if not isinstance(value, int) or isinstance(value, bool):
            raise EventStreamError(f"header {header.name!r}: type {kind.name} needs an int")
        out.append(kind)
        try:
            out += _INT_FORMATS[kind].pack(value)
        except struct.error:
            raise EventStreamError(f"header {header.name!r}: {value} does not fit type {kind.name}") from None
    elif kind is HeaderType.UUID:
        if not isinstance(value, bytes) or len(value) != 16:
            raise EventStreamError(f"header {header.name!r}: a UUID is 16 bytes")
        out.append(kind)
        out += value
    else:
        data = value.encode("utf-8") if kind is HeaderType.STRING and isinstance(value, str) else value
        if not isinstance(data, bytes) or (kind is HeaderType.STRING) != isinstance(value, str):
            raise EventStreamError(f"header {header.name!r}: type {kind.name} holds {type(value).__name__}")
        if len(data) > 0xFFFF:
            raise EventStreamError(f"header {header.name!r}: value of {len(data)} bytes (at most 65535)")
        out.append(kind)
        out += _U16.pack(len(data))
        out += data
    return bytes(out)


def encode_message(headers: tuple[Header, ...], payload: bytes) -> bytes:
    """One whole frame: lengths, both CRCs, headers and payload."""
    encoded = b"".join(_encode_header(h) for h in headers)
    if len(encoded) > MAX_HEADERS_LENGTH:
        raise EventStreamError(f"headers of {len(encoded)} bytes (at most {MAX_HEADERS_LENGTH})")
    if len(payload) > MAX_PAYLOAD_LENGTH:
        raise EventStreamError(f"payload of {len(payload)} bytes (at most {MAX_PAYLOAD_LENGTH})")
    prelude = _PRELUDE.pack(_MIN_MESSAGE + len(encoded) + len(payload), len(encoded))
    head = prelude + _U32.pack(zlib.crc32(prelude))
    body = head + encoded + payload
    return body + _U32.pack(zlib.crc32(body))


# --- decoding -------------------------------------------------------------------------------------


_TYPES = tuple(HeaderType)  # by wire code: a tuple index is cheaper than the enum's lookup
_HEADER_CACHE_SIZE = 32


def _decode_headers(data: bytes, offset: int) -> tuple[Header, ...]:
    """Headers in `data`; `offset` is where they start in the stream (for the error message)."""
    headers: list[Header] = []
    pos, end = 0, len(data)
    while pos < end:
        name_len = data[pos]
        pos += 1
        if name_len == 0:
            raise EventStreamError(f"header block at byte {offset}: empty header name")
        if pos + name_len + 1 > end:
            raise EventStreamError(f"header block at byte {offset}: a header name runs past the headers' end")
        try:
            name = data[pos : pos + name_len].decode("utf-8")
        except UnicodeDecodeError:
            raise EventStreamError(f"header block at byte {offset}: a header name is not UTF-8") from None
        pos += name_len
        code = data[pos]
        pos += 1
        if code >= len(_TYPES):
            raise EventStreamError(f"header {name!r} at byte {offset}: unknown header type {code}")
        kind = _TYPES[code]
        value: HeaderValue
        if kind is HeaderType.STRING or kind is HeaderType.BYTES:
            if pos + 2 > end:
                raise EventStreamError(
                    f"header block at byte {offset}: header {name!r}'s length runs past the headers' end"
                )
            size = (data[pos] << 8) | data[pos + 1]
            pos += 2
            if pos + size > end:
                raise EventStreamError(
                    f"header block at byte {offset}: header {name!r}'s value runs past the headers' end"
                )
            raw = data[pos : pos + size]
            pos += size
            if kind is HeaderType.STRING:
                try:
                    value = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise EventStreamError(f"header {name!r} at byte {offset}: string value is not UTF-8") from None
            else:
                value = raw
        elif kind is HeaderType.BOOL_TRUE:
            value = True
        elif kind is HeaderType.BOOL_FALSE:
            value = False
        elif kind is HeaderType.UUID:
            if pos + 16 > end:
                raise EventStreamError(
                    f"header block at byte {offset}: header {name!r}'s value runs past the headers' end"
                )
            value = data[pos : pos + 16]
            pos += 16
        else:
            fmt = _INT_FORMATS[kind]
            if pos + fmt.size > end:
                raise EventStreamError(
                    f"header block at byte {offset}: header {name!r}'s value runs past the headers' end"
                )
            value = fmt.unpack_from(data, pos)[0]
            pos += fmt.size
        headers.append(Header(name, kind, value))
    return tuple(headers)


class EventStreamDecoder:
    """Incremental: `feed(chunk)` returns every message the chunk completed; `finish()` says
    whether the stream ended between messages. After an error the decoder stays failed.

    A stream repeats the same few header blocks (Bedrock: one per chunk event): decoded header
    blocks are kept by their bytes (at most 32 kinds), so a repeated one is decoded once."""

    __slots__ = ("_parts", "_held", "_need", "_consumed", "_failed", "_headers")

    def __init__(self) -> None:
        # The start of a message whose bytes have not all arrived, as the chunks came: joined
        # only once `_need` bytes are held (a large message read in many chunks is copied once).
        self._parts: list[bytes] = []
        self._held = 0
        self._need = _PRELUDE_LEN
        self._consumed = 0  # stream offset of the held bytes, for error messages
        self._failed: EventStreamError | None = None
        self._headers: dict[bytes, tuple[Header, ...]] = {}

    def feed(self, chunk: bytes) -> list[Message]:
        return [Message(self.headers_of(block), payload) for block, payload in self.frames(chunk)]

    def headers_of(self, block: bytes) -> tuple[Header, ...]:
        """A header block's headers, decoded once per distinct block (a block that `frames`
        returned is well-formed: its message's CRC covered it)."""
        headers = self._headers.get(block)
        if headers is None:
            headers = _decode_headers(block, self._consumed)
            if len(self._headers) < _HEADER_CACHE_SIZE:
                self._headers[block] = headers
        return headers

    def frames(self, chunk: bytes) -> list[tuple[bytes, bytes]]:
        """Every message the chunk completed, as (header block, payload) bytes, both CRCs checked."""
        if self._failed is not None:
            raise self._failed
        if self._parts:
            self._parts.append(chunk)
            self._held += len(chunk)
            if self._held < self._need:
                return []
            data = b"".join(self._parts)
            self._parts = []
        else:
            data = chunk
        out: list[tuple[bytes, bytes]] = []
        pos, size = 0, len(data)
        try:
            while size - pos >= _PRELUDE_LEN:
                total: int
                headers_len: int
                total, headers_len, expected = _PRELUDE_CRC.unpack_from(data, pos)
                self._check_prelude(data, pos, total, headers_len, expected)
                end = pos + total
                if end > size:
                    self._need = total
                    break
                expected = _U32.unpack_from(data, end - 4)[0]
                computed = zlib.crc32(data[pos : end - 4])
                if computed != expected:
                    raise EventStreamError(
                        f"message CRC mismatch in the message at byte {self._consumed}: "
                        f"the frame says {expected:#010x}, its bytes give {computed:#010x}"
                    )
                headers_end = pos + _PRELUDE_LEN + headers_len
                out.append((data[pos + _PRELUDE_LEN : headers_end], data[headers_end : end - 4]))
                self._consumed += total
                pos = end
            else:
                self._need = _PRELUDE_LEN
        except EventStreamError as err:
            self._failed = err
            raise
        if pos < size:
            rest = data[pos:] if pos else data
            self._parts, self._held = [rest], len(rest)
        else:
            self._held = 0
        return out

    def _check_prelude(self, data: bytes, pos: int, total: int, headers_len: int, expected: int) -> None:
        at = self._consumed
        computed = zlib.crc32(data[pos : pos + 8])
        if computed != expected:
            raise EventStreamError(
                f"prelude CRC mismatch in the message at byte {at}: "
                f"the frame says {expected:#010x}, its bytes give {computed:#010x}"
            )
        if headers_len > MAX_HEADERS_LENGTH:
            raise EventStreamError(
                f"message at byte {at}: headers of {headers_len} bytes (at most {MAX_HEADERS_LENGTH})"
            )
        payload_len = total - _MIN_MESSAGE - headers_len
        if payload_len < 0:
            raise EventStreamError(
                f"message at byte {at}: total length {total} cannot hold its prelude, "
                f"{headers_len} bytes of headers and the message CRC"
            )
        if payload_len > MAX_PAYLOAD_LENGTH:
            raise EventStreamError(
                f"message at byte {at}: payload of {payload_len} bytes (at most {MAX_PAYLOAD_LENGTH})"
            )

    def finish(self) -> None:
        """Raises EventStreamError if the stream ended inside a message."""
        if self._failed is not None:
            raise self._failed
        if self._held:
            raise EventStreamError(
                f"the stream ended inside the message at byte {self._consumed} ({self._held} bytes of it arrived)"
            )


def decode_all(data: bytes) -> list[Message]:
    """Every message of a whole stream (EventStreamError if it is not exactly whole messages)."""
    decoder = EventStreamDecoder()
    messages = decoder.feed(data)
    decoder.finish()
    return messages
