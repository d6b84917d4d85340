"""The obligations a policy decision may carry, all of which the gateway honours (docs/policy.md).

Defined here only: the policy's decision check, the configuration schema, session recording and
the audit record read them.
"""

from __future__ import annotations

RECORD_PAYLOAD = "record_payload"  # record the request's payloads, sealed at rest (docs/recording.md)
OBLIGATIONS = frozenset({RECORD_PAYLOAD})
