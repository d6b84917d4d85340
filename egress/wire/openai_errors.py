"""The OpenAI error envelope, shared by Chat Completions and Responses."""

from __future__ import annotations

from typing import Any

import orjson

from egress.core.errors import EgressError, ErrorCode

_ERROR_TYPE = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    429: "requests",  # OpenAI's type for a rate limit on requests (code rate_limit_exceeded)
    500: "server_error",
    502: "server_error",
    503: "server_error",
    504: "timeout_error",
}


def error_object(err: EgressError) -> dict[str, Any]:
    return {
        "message": f"egress: {err.message}",
        "type": _ERROR_TYPE.get(err.status, "server_error"),
        "param": None,
        "code": err.code.value,
    }


def render_error(err: EgressError, request_id: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = orjson.dumps({"error": error_object(err)})
    status = err.status
    if err.code is ErrorCode.UNAUTHORIZED:
        # Codex CLI treats 401 as "refresh the login and reconnect" and retries five times; a
        # rejected gateway key is final, so OpenAI-family clients get 403 (not retried by anyone).
        status = 403
    headers = [
        (b"content-type", b"application/json"),
        (b"x-request-id", request_id.encode()),
        (b"x-should-retry", b"true" if err.retryable else b"false"),
    ]
    return status, headers, body
