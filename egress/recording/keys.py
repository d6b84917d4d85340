"""The keys that seal recorded payloads at rest, and the sealing itself (AES-256-GCM).

The key file holds one key per line, `<key id> <64 hex digits>`; the last line is the current
key, the one new payloads are sealed with; earlier lines are kept to open older payloads until
retention has removed every payload sealed with them (`egress audit recording-key prune`).
Lines starting with `#` are comments. The file is created readable by its owner only.

Invariants:
  * a key id is derived from its key (a hash), so an id can never name the wrong key;
  * every sealed payload names its key id and is bound, as AES-GCM associated data, to the
    request id, the direction (sent or received) and that key id: a ciphertext moved to another
    record, swapped between directions or relabelled with another key id does not open;
  * nonces are 96 random bits, fresh for every payload.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_FORMAT = 1  # the first byte of a sealed payload
_NONCE = 12
_TAG = 16
_AD_PREFIX = b"egress recording v1\x00"
_HEADER = "# egress recording keys: '<key id> <64 hex digits>' per line; the last line is the current key\n"


class Direction(StrEnum):
    SENT = "sent"  # the body egress sent upstream (masked)
    RECEIVED = "received"  # the upstream's answer as received (still masked)


class RecordingKeyError(ValueError):
    """The key file is missing, unreadable or malformed (the message names the file and line)."""


class SealError(ValueError):
    """A sealed payload does not open: tampered, moved to another record, or its key is gone."""


def key_id_of(key: bytes) -> str:
    return "rk_" + hashlib.sha256(b"egress recording key id\x00" + key).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class RecordingKeys:
    """Every known key by id, and the id of the current one (the last in the file)."""

    keys: dict[str, bytes]
    current: str

    @classmethod
    def of(cls, *keys: bytes) -> RecordingKeys:
        """A key set from raw keys, the last one current."""
        if not keys:
            raise RecordingKeyError("a recording key set needs at least one key")
        return cls({key_id_of(k): k for k in keys}, key_id_of(keys[-1]))

    def seal(self, request_id: str, direction: Direction, plaintext: bytes) -> bytes:
        """format ‖ len(key id) ‖ key id ‖ nonce ‖ AES-GCM(plaintext, ad = request ‖ direction ‖ key id)."""
        kid = self.current.encode("ascii")
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, _associated(request_id, direction, kid))
        return bytes((_FORMAT, len(kid))) + kid + nonce + sealed

    def open(self, request_id: str, direction: Direction, sealed: bytes) -> bytes:
        kid = sealed_key_id(sealed)
        key = self.keys.get(kid)
        if key is None:
            raise SealError(f"the payload is sealed with key {kid}, which the key file no longer holds")
        start = 2 + len(kid)
        nonce, body = sealed[start : start + _NONCE], sealed[start + _NONCE :]
        try:
            return AESGCM(key).decrypt(nonce, body, _associated(request_id, direction, kid.encode("ascii")))
        except InvalidTag:
            raise SealError(
                f"the {direction.value} payload does not open: it was altered or belongs to another record"
            ) from None


def sealed_key_id(sealed: bytes) -> str:
    """The key id a sealed payload names (raises SealError when it is not a sealed payload)."""
    if len(sealed) < 2 or sealed[0] != _FORMAT:
        raise SealError("not a sealed recording payload (unknown format)")
    end = 2 + sealed[1]
    if len(sealed) < end + _NONCE + _TAG:
        raise SealError("not a sealed recording payload (too short)")
    try:
        return sealed[2:end].decode("ascii")
    except UnicodeDecodeError:
        raise SealError("not a sealed recording payload (bad key id)") from None


def _associated(request_id: str, direction: Direction, kid: bytes) -> bytes:
    return b"%s%s\x00%s\x00%s" % (_AD_PREFIX, request_id.encode("utf-8"), direction.value.encode("ascii"), kid)


# --- the key file ------------------------------------------------------------------------------


def load_recording_keys(path: Path) -> RecordingKeys:
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise RecordingKeyError(f"{path}: no recording key file (the gateway creates it at first start)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingKeyError(f"{path}: cannot read the recording key file ({exc})") from None
    keys: list[bytes] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        try:
            key = bytes.fromhex(parts[-1])
        except ValueError:
            key = b""
        if len(parts) != 2 or len(key) != 32:
            raise RecordingKeyError(f"{path}:{number}: expected '<key id> <64 hex digits>'")
        if parts[0] != key_id_of(key):
            raise RecordingKeyError(f"{path}:{number}: key id {parts[0]!r} does not belong to this key")
        keys.append(key)
    if not keys:
        raise RecordingKeyError(f"{path}: the recording key file holds no key")
    return RecordingKeys.of(*keys)


def load_or_create_recording_keys(path: Path) -> RecordingKeys:
    """The key set; at first start, a file with one new key, 0600. The file is written whole
    beside its place, then linked there only if nothing is there yet: two workers starting
    together agree on one key, and neither ever reads a half-written file."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _write_new(path, [os.urandom(32)])
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return load_recording_keys(path)


def rotate_recording_key(path: Path) -> RecordingKeys:
    """Add a new current key; the older ones stay to open what they sealed."""
    keys = load_recording_keys(path)
    ordered = [k for kid, k in keys.keys.items() if kid != keys.current] + [keys.keys[keys.current]]
    _replace(path, [*ordered, os.urandom(32)])
    return load_recording_keys(path)


def prune_recording_keys(path: Path, in_use: set[str]) -> list[str]:
    """Drop the keys no stored payload needs (never the current one); returns the dropped ids."""
    keys = load_recording_keys(path)
    dropped = [kid for kid in keys.keys if kid != keys.current and kid not in in_use]
    if dropped:
        kept = [k for kid, k in keys.keys.items() if kid not in dropped and kid != keys.current]
        _replace(path, [*kept, keys.keys[keys.current]])
    return dropped


def _render(keys: list[bytes]) -> str:
    return _HEADER + "".join(f"{key_id_of(k)} {k.hex()}\n" for k in keys)


def _replace(path: Path, keys: list[bytes]) -> None:
    """Write the new file beside the old one (0600), then rename it over: never half a file."""
    _write_new(path, keys).replace(path)


def _write_new(path: Path, keys: list[bytes]) -> Path:
    """A complete key file (0600, synced) beside `path`, under a name of this process's own."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(_render(keys))
        f.flush()
        os.fsync(f.fileno())
    return tmp
