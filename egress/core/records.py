"""Records that cross from the gateway to storage: audit entries and gateway keys.

An audit entry's `canonical` bytes are the record as hashed into the chain; the other fields are
copies of values inside it, kept as columns so the audit can be searched. Verification checks
that the copies still agree with the hashed record.
"""

from __future__ import annotations

from dataclasses import dataclass

from egress.core.key_scope import UNSCOPED, KeyScope


@dataclass(frozen=True, slots=True)
class AuditEntry:
    request_id: str
    ts: float
    user: str | None
    team: str | None
    api: str | None
    endpoint: str | None
    jurisdiction: str | None
    outcome: str
    status: int | None
    canonical: bytes  # the whole record, canonical JSON (sorted keys), as hashed


# The hash the chain's first record links to (its `prev`): the writer, the store and the
# verifiers must agree on it, or no chain verifies.
GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class StoredAudit:
    seq: int
    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A gateway key as stored: its public id and the SHA-256 of the secret, never the secret."""

    key_id: str
    key_hash: str
    user: str  # the person the key belongs to (a service account's owner)
    team: str | None
    created_at: float
    revoked_at: float | None
    expires_at: float | None = None  # refused from then on (the edge checks it on every request)
    scope: KeyScope = UNSCOPED
    service_account: str | None = None  # set: the key is a pipeline's, named so
    rotated_from: str | None = None  # the key id this one succeeds (`egress keys rotate`)
    last_used_at: float | None = None  # coalesced: written by the gateways every few seconds at most

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement: "the chain had `count` records, the last one `seq` with hash `hash`".

    The signature (Ed25519, hex) covers every other field; `key_id` names the public key that
    checks it. Sequence numbers are dense, so `count == seq` in a well-formed checkpoint.

    Version 2 also signs `first` and `root`: the Merkle root (hex, `egress.audit.merkle`) over
    the records first..seq, its span. Version 1 checkpoints have neither (both None)."""

    seq: int
    hash: str
    count: int
    ts: float
    key_id: str
    signature: str
    first: int | None = None
    root: str | None = None


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    """A local console account: its argon2 password hash (never the password), role and team."""

    name: str
    password_hash: str
    role: str  # "admin" or "team_lead"
    team: str | None  # required for a team lead
    created_at: float


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in console session, kept server-side. The store holds the SHA-256 of the cookie's
    token, never the token; `csrf` is the per-session token every state-changing form carries."""

    token_hash: str
    user: str
    role: str
    team: str | None
    csrf: str
    created_at: float
    expires_at: float


@dataclass(frozen=True, slots=True)
class StoredRecording:
    """A recorded request's payloads as stored: sealed by `egress.recording` before they
    reach storage (nothing here is readable without the recording key). Retention empties `sent`
    and `received` (None) and keeps the row, so a replay can say the payload expired.

    `metadata` is JSON of kinds, counts, sizes, the endpoint and the status: never a value."""

    request_id: str
    recorded_at: float
    expires_at: float
    key_id: str
    sent: bytes | None
    received: bytes | None
    metadata: bytes


@dataclass(frozen=True, slots=True)
class ConsoleLogin:
    """An OIDC sign-in in progress, server-side: what the callback needs to finish it."""

    login_hash: str  # SHA-256 of the browser's login cookie
    state: str
    nonce: str
    code_verifier: str  # PKCE: never sent to the browser
    next_path: str
    expires_at: float
