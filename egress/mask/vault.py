"""The session vault: placeholder maps of stateful conversations, sealed at rest.

A Responses conversation continued with `previous_response_id` sends only its new input; the
provider holds the earlier turns, masked, and the model may cite their placeholders. To restore
them, egress keeps each answer's map under the response id, for `ttl_s`.

Invariants: nothing reaches storage in clear. Each entry is AES-256-GCM sealed under the vault key
(derived from the tenant's master key), with a fresh 96-bit nonce and the entry id as associated
data, so an entry cannot be moved under another id. The entry id itself is an HMAC of the
response id and of the user who created it: only that user can continue the conversation with
its values restored. An entry that does not open (wrong key, tampered) is treated as absent: the answer
keeps its placeholders rather than guessing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from egress.mask.settings import MaskingSettings

log = logging.getLogger("egress.mask")
_VERSION = b"\x01"


class VaultStore(Protocol):
    def vault_get(self, entry_id: str) -> tuple[bytes, float] | None: ...

    def vault_put(self, entry_id: str, sealed: bytes, expires_at: float) -> None: ...

    def vault_purge(self, now: float) -> int: ...


class SessionVault:
    """Synchronous: call from a worker thread, never on the event loop. The request path bounds
    its wait for a vault call by `timeout_s` (a locked or unreachable store refuses the read, or
    skips the write, rather than holding the request)."""

    def __init__(
        self,
        key: bytes,
        store: VaultStore,
        ttl_s: float,
        clock: Callable[[], float] = time.time,
        timeout_s: float = MaskingSettings().vault_timeout_s,
    ) -> None:
        self.timeout_s = timeout_s
        self._aead = AESGCM(key)
        self._id_key = hashlib.sha256(b"egress vault id\x00" + key).digest()
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock

    def entry_id(self, response_id: str, owner: str) -> str:
        """Bound to who created it: another user who learns a response id (the provider shares
        one organisation's ids across its keys) cannot have that conversation's values restored."""
        return hmac.new(self._id_key, owner.encode() + b"\0" + response_id.encode(), hashlib.sha256).hexdigest()

    def save(self, response_id: str, owner: str, placeholders: Mapping[str, str]) -> None:
        entry = self.entry_id(response_id, owner)
        nonce = os.urandom(12)
        sealed = _VERSION + nonce + self._aead.encrypt(nonce, orjson.dumps(dict(placeholders)), entry.encode())
        self.store.vault_put(entry, sealed, self.clock() + self.ttl_s)

    def load(self, response_id: str, owner: str) -> dict[str, str] | None:
        entry = self.entry_id(response_id, owner)
        row = self.store.vault_get(entry)
        if row is None:
            return None
        sealed, expires_at = row
        if expires_at <= self.clock():
            return None
        if not sealed.startswith(_VERSION) or len(sealed) < 29:
            log.warning("vault entry %s is malformed; ignored", entry[:12])
            return None
        try:
            plain = self._aead.decrypt(sealed[1:13], sealed[13:], entry.encode())
        except InvalidTag:
            log.warning("vault entry %s does not open under this key; ignored", entry[:12])
            return None
        doc = orjson.loads(plain)
        return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else None

    def purge(self) -> int:
        return self.store.vault_purge(self.clock())
