"""An upstream error after a held stream's headers went out becomes an in-stream error: whatever
the upstream's body, a precise EgressError, with the provider's own message when it gave one."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from egress.core.errors import ErrorCode
from egress.gateway.approval_gate import late_upstream_error


def test_provider_message_is_kept() -> None:
    body = json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": "too long"}}).encode()
    err = late_upstream_error(400, body)
    assert err.code is ErrorCode.INVALID_REQUEST and err.message == "the provider answered 400: too long"
    err = late_upstream_error(503, json.dumps({"error": "overloaded"}).encode())
    assert err.code is ErrorCode.UPSTREAM_UNAVAILABLE and err.message == "the provider answered 503: overloaded"


@given(status=st.integers(min_value=201, max_value=599), body=st.binary(max_size=200))
def test_any_body_gives_a_precise_error(status: int, body: bytes) -> None:
    err = late_upstream_error(status, body)
    assert err.message.startswith(f"the provider answered {status}")
    assert err.code is (ErrorCode.UPSTREAM_UNAVAILABLE if status >= 500 else ErrorCode.INVALID_REQUEST)


@given(
    doc=st.recursive(
        st.none() | st.integers() | st.text(max_size=10),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
    )
)
def test_any_json_gives_a_precise_error(doc: object) -> None:
    err = late_upstream_error(429, json.dumps(doc).encode())
    assert err.message.startswith("the provider answered 429")
