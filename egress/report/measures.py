"""The technical and organisational measures the gateway puts in force (GDPR Art. 32), stated
from the configuration's facts the caller passes in."""

from __future__ import annotations

from collections.abc import Sequence


def measures(masking_kinds: Sequence[str], approvals_mode: str | None, policy_engine: str) -> tuple[str, ...]:
    out = [
        f"Masking before egress of finding kinds {', '.join(sorted(masking_kinds))}: values are replaced by "
        "placeholders and restored in the answer; the audit keeps keyed hashes, never values",
        "Encryption at rest: recorded payloads sealed with AES-256 (recording.key); the masking vault "
        "keyed by the tenant master key",
        "Tamper-evident audit: SHA-256 hash chain over every request, Ed25519-signed checkpoints with "
        "Merkle span roots",
        f"Routing by policy ({policy_engine}): jurisdiction, DPA, training and retention facts decide "
        "where a request may go",
    ]
    if approvals_mode:
        out.append(f"Just-in-time human approval of held requests (mode {approvals_mode})")
    return tuple(out)
