"""Placeholders: what the provider sees instead of a masked value.

    EGX_<LABEL>_<hash>      e.g.  EGX_AWS_ACCESS_KEY_ID_qkfzrmbtwyhea

Invariants:
  * deterministic per tenant: the hash is a keyed BLAKE2b of the value under the tenant's key,
    so the same value gets the same placeholder on every turn and every request, and a masked
    prompt prefix stays byte-identical across turns (prompt caching keeps working);
  * ASCII letters, digits and underscores only: a placeholder is a valid identifier in most
    languages and needs no escaping in JSON at any depth, so code and tool-call JSON that contain
    one still parse;
  * unambiguous to find: the label is [A-Z0-9_], the hash 13 lower-case letters (60 bits),
    so a placeholder's end is fixed by its first lower-case run, whatever text is glued after it.
The value itself is never derivable from the placeholder.
"""

from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass
from hashlib import blake2b
from pathlib import Path

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "EGX_"
HASH_LEN = 13
MAX_LABEL = 40
PATTERN = re.compile(rb"EGX_[A-Z0-9_]{1,%d}_[a-z]{%d}" % (MAX_LABEL + 1, HASH_LEN))
_LABEL_JUNK = re.compile(r"[^A-Z0-9]+")
_LETTERS = bytes(0x61 + b % 26 for b in range(256))


@functools.lru_cache(maxsize=4096)
def label_for(rule_id: str) -> str:
    """`aws-access-key-id` -> `AWS_ACCESS_KEY_ID`: the model can still tell what kind of value it was."""
    label = _LABEL_JUNK.sub("_", rule_id.upper()).strip("_")[:MAX_LABEL].strip("_")
    return label or "SECRET"


@dataclass(frozen=True, slots=True)
class MaskingKeys:
    """Three independent keys derived from the tenant's one master key (HKDF-SHA256)."""

    placeholder: bytes  # BLAKE2b key for placeholder hashes
    audit: bytes  # BLAKE2b key for the value hashes in audit records (never equal to a placeholder's)
    vault: bytes  # AES-256-GCM key for the session vault

    @classmethod
    def derive(cls, master: bytes) -> MaskingKeys:
        def sub(info: bytes) -> bytes:
            return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)

        return cls(sub(b"egress placeholder v1"), sub(b"egress audit v1"), sub(b"egress vault v1"))


def load_or_create_master_key(path: Path) -> bytes:
    """The tenant's master key: 32 random bytes created at first start, readable by the owner only.

    Created with O_EXCL so two workers starting together agree on one key."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            data = path.read_bytes()
        else:
            key = os.urandom(32)
            with os.fdopen(fd, "wb") as f:
                f.write(key.hex().encode() + b"\n")
            return key
    text = data.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{path}: the masking key file must hold 64 hex digits") from None
    if len(key) != 32:
        raise ValueError(f"{path}: the masking key file must hold 64 hex digits (32 bytes)")
    return key


class Placeholders:
    """Placeholders and audit hashes of values. Agents resend the same values every turn, so the
    results are memoised (in process memory only, bounded; the values are there anyway while a
    request is handled)."""

    _MEMO_MAX = 4096
    # A secret-dense text is one value of up to the body size: never kept in the memos.
    _MEMO_VALUE_MAX = 64 * 1024

    def __init__(self, keys: MaskingKeys) -> None:
        self._key = keys.placeholder
        self._audit_key = keys.audit
        self._made: dict[tuple[str, str], str] = {}
        self._hashed: dict[str, str] = {}

    def make(self, value: str, label: str) -> str:
        made = self._made.get((value, label)) if len(value) <= self._MEMO_VALUE_MAX else None
        if made is None:
            digest = _keyed(value, self._key, HASH_LEN).digest()
            # 13 letters, one per digest byte (byte mod 26: about 4.6 bits each, 60 bits in all).
            made = f"{PREFIX}{label}_{digest.translate(_LETTERS).decode('ascii')}"
            if len(value) <= self._MEMO_VALUE_MAX:
                if len(self._made) >= self._MEMO_MAX:
                    self._made.clear()
                self._made[(value, label)] = made
        return made

    def audit_hash(self, value: str) -> str:
        """A keyed hash for the audit record: lets an auditor tell two masked values apart (or
        match a suspected value, given the key) without the record ever holding the value."""
        hashed = self._hashed.get(value) if len(value) <= self._MEMO_VALUE_MAX else None
        if hashed is None:
            digest = _keyed(value, self._audit_key, 16)
            hashed = "blake2b:" + digest.hexdigest()
            if len(value) <= self._MEMO_VALUE_MAX:
                if len(self._hashed) >= self._MEMO_MAX:
                    self._hashed.clear()
                self._hashed[value] = hashed
        return hashed


_PIECE = 1 << 20


def _keyed(value: str, key: bytes, size: int) -> blake2b:
    """blake2b of the value's UTF-8. A large value (a secret-dense text) is encoded and hashed
    in pieces: the same digest, but no single call holds the GIL for the whole value (blake2b
    releases it while it hashes a piece)."""
    digest = blake2b(key=key, digest_size=size)
    for at in range(0, len(value), _PIECE):
        digest.update(value[at : at + _PIECE].encode("utf-8", "surrogatepass"))
    return digest


def json_escape(value: str) -> bytes:
    """The bytes of `value` inside a JSON string literal (no quotes), as a compact encoder writes it."""
    # orjson writes non-ASCII as UTF-8 and escapes exactly what JSON requires.
    return orjson.dumps(value)[1:-1]
