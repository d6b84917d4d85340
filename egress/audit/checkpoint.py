"""Signed checkpoints of the audit chain.

A checkpoint states "the chain had `count` records and record `seq` had hash `hash`", signed with
an Ed25519 key that egress creates at first start. Because each record's hash covers every record
before it, one valid checkpoint vouches for the whole chain up to `seq`: a record edited, deleted,
inserted or reordered at or before `seq`, even with every later hash recomputed, no longer ends at
the signed hash; records deleted from the tail leave a checkpoint pointing past the end.

Version 2 (`v: 2` in the signed bytes) also signs its span, `first` (the first sequence number
after the previous checkpoint) and `root`, the Merkle root over the records first..seq
(`egress.audit.merkle`): a record of the span can then be proven a member of the signed chain by
a short inclusion path, without the records around it (filtered exports). Version 1 checkpoints,
without a span, still verify as before.

Invariants: the private key file is created once, atomically, readable by its owner only; the
signed bytes are a domain tag plus canonical JSON of every field but the signature, so a
checkpoint cannot be re-used as any other signed message and no field can be edited unnoticed
(removing `first` and `root` turns the bytes into a v1 statement the key never signed).
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import replace
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from egress.core.records import Checkpoint

_DOMAIN = b"egress.audit.checkpoint.v1\n"  # the message type; the body's `v` is its version
_HEX_DIGITS = frozenset("0123456789abcdef")


class SigningKeyError(ValueError):
    """The key file exists but does not hold an Ed25519 key in PEM."""


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The checkpoint signing key: created at first start (0600), then read.

    The PEM is written to a private temporary file and hard-linked into place, so a second process
    starting at the same moment either wins the link or reads the complete key of the winner."""
    if not path.exists():
        _create_key_file(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError:
        raise SigningKeyError(f"{path}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path}: the audit signing key must be Ed25519")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first: use theirs
    finally:
        tmp.unlink(missing_ok=True)


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError:
        raise SigningKeyError("not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("the audit public key must be Ed25519")
    return key


def key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """A short, stable name of the key pair: the first 16 hex digits of SHA-256(raw public key)."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def signed_bytes(cp: Checkpoint) -> bytes:
    """What the signature covers: v1 without a span, v2 with `first` and `root`."""
    body: dict[str, object] = {"count": cp.count, "hash": cp.hash, "key_id": cp.key_id, "seq": cp.seq, "ts": cp.ts}
    if cp.first is None and cp.root is None:
        body["v"] = 1
    else:
        body.update(v=2, first=cp.first, root=cp.root)
    return _DOMAIN + orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


class Signer:
    """Signs checkpoints with the gateway's private key (held by the audit writer thread only)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.key_id = key_id(key)

    def sign(self, seq: int, hash_: str, ts: float, first: int | None = None, root: bytes | None = None) -> Checkpoint:
        """A v2 checkpoint when given its span (`first`, and the Merkle `root` of first..seq), else v1."""
        unsigned = Checkpoint(
            seq=seq,
            hash=hash_,
            count=seq,
            ts=ts,
            key_id=self.key_id,
            signature="",
            first=first,
            root=root.hex() if root is not None else None,
        )
        return replace(unsigned, signature=self._key.sign(signed_bytes(unsigned)).hex())


def signature_problem(cp: Checkpoint, public: Ed25519PublicKey) -> str | None:
    """Why this checkpoint is not a valid statement by `public`'s owner, or None when it is."""
    if cp.key_id != key_id(public):
        return f"signed by key {cp.key_id!r}, not by the given public key {key_id(public)!r}"
    try:
        public.verify(bytes.fromhex(cp.signature), signed_bytes(cp))
    except (InvalidSignature, ValueError, TypeError):
        return "signature does not verify (the checkpoint was forged or edited)"
    if cp.count != cp.seq:
        return f"count {cp.count} disagrees with sequence number {cp.seq}"
    return span_problem(cp)


def span_problem(cp: Checkpoint) -> str | None:
    """Why a checkpoint's span is malformed (v1 has none), or None."""
    if cp.first is None and cp.root is None:
        return None
    if not isinstance(cp.first, int) or not 1 <= cp.first <= cp.seq:
        return f"its span starts at {cp.first!r}, not within records 1..{cp.seq}"
    if not isinstance(cp.root, str) or len(cp.root) != 64 or not set(cp.root) <= _HEX_DIGITS:
        return "its span root is not a SHA-256 hash in lower-case hex"
    return None
