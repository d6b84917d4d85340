"""Amazon Bedrock endpoints (`api: bedrock`): SigV4 from AWS's credential chain, or an API key.

- `credentials: {chain: true}`: botocore's credential chain (environment, shared files and
  profiles, SSO, web identity, container and instance roles), resolved on a thread on first use
  and again, on a thread, whenever botocore says refreshable credentials need refreshing; each
  request signed with botocore's `SigV4Auth` (service `bedrock`, the endpoint's `region`) over the
  exact bytes that leave: method, URL, every header sent, the body's SHA-256;
- `credentials: {env: AWS_BEARER_TOKEN_BEDROCK}`: a Bedrock API key, sent as a bearer token
  (egress.route.upstream.upstream_headers puts it on).

The answer: event-stream into Anthropic SSE, errors into Anthropic's shape (egress.wire.bedrock).
"""

from __future__ import annotations

import asyncio
from typing import Any

import botocore.credentials
import botocore.exceptions
import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from multidict import CIMultiDict

from egress.core.endpoint import Endpoint
from egress.core.errors import EgressError, ErrorCode
from egress.route.clouds.base import Headers, Prepared, header, replace_content_type
from egress.route.clouds.profiles import profile_problem
from egress.wire import bedrock

SERVICE = "bedrock"
_SSE = b"text/event-stream; charset=utf-8"
_JSON = b"application/json"


class BedrockAdapter:
    def __init__(self, endpoint: Endpoint) -> None:
        self._endpoint = endpoint
        self._sign = endpoint.credentials.chain
        # botocore's Credentials (untyped): None until the chain is first read.
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    def prepare(self, model: str, stream: bool, body: bytes, headers: CIMultiDict[str]) -> Prepared:
        problem = profile_problem(self._endpoint, model)
        if problem is not None:
            raise EgressError(ErrorCode.NO_ROUTE, problem, stage="route")
        return Prepared(
            bedrock.invoke_path(model, stream), "", bedrock.request_body(body, headers.get("anthropic-beta"))
        )

    async def authorize(self, url: str, headers: CIMultiDict[str], body: bytes) -> None:
        if not self._sign:
            return  # an API key: already the bearer token
        frozen = await self._frozen()
        # Signed: method, path, query, host, content-type, x-amz-date (and the session token),
        # and the body's SHA-256. The client's other headers travel unsigned, as SigV4 allows
        # (host and x-amz-* must be signed): botocore canonicalises every header it is given,
        # which would cost more than the rest of the request's cloud handling together.
        signed = {"content-type": headers.get("content-type", "application/json")}
        request = AWSRequest(method="POST", url=url, data=body, headers=signed)
        SigV4Auth(frozen, SERVICE, self._endpoint.region).add_auth(request)
        for name in ("Authorization", "X-Amz-Date", "X-Amz-Security-Token"):
            value = request.headers.get(name)
            if value is not None:
                headers[name] = value

    async def _frozen(self) -> botocore.credentials.ReadOnlyCredentials:
        creds = self._credentials
        if creds is not None and not _refresh_needed(creds):
            return creds.get_frozen_credentials()
        async with self._lock:
            try:
                resolved = self._credentials
                if resolved is None:
                    resolved = self._credentials = await asyncio.to_thread(_resolve)
                # A refresh (STS, SSO, a role) is network I/O: on a thread.
                return await asyncio.to_thread(resolved.get_frozen_credentials)
            except (botocore.exceptions.BotoCoreError, OSError) as exc:
                raise EgressError(
                    ErrorCode.UPSTREAM_UNAVAILABLE,
                    f"endpoint {self._endpoint.name!r} failed: no AWS credentials ({type(exc).__name__})",
                    details={"endpoint": self._endpoint.name, "cause": "credentials"},
                ) from None

    def answer(self) -> BedrockAnswer:
        return BedrockAnswer()


def _refresh_needed(creds: botocore.credentials.Credentials) -> bool:
    if isinstance(creds, botocore.credentials.RefreshableCredentials):
        return bool(creds.refresh_needed())
    return False


def _resolve() -> botocore.credentials.Credentials:
    creds = botocore.session.Session().get_credentials()
    if creds is None:
        raise botocore.exceptions.NoCredentialsError()
    return creds


class BedrockAnswer:
    __slots__ = ("_stream", "_error", "_status")

    def __init__(self) -> None:
        self._stream: bedrock.StreamTranslator | None = None
        self._error: str | None = None  # x-amzn-ErrorType of an error answer ("" when absent)
        self._status = 0

    def head(self, status: int, headers: Headers, content_type: str) -> tuple[int, Headers, str]:
        if 200 <= status < 300 and content_type.startswith(bedrock.CONTENT_TYPE):
            self._stream = bedrock.StreamTranslator()
            return status, replace_content_type(headers, _SSE), _SSE.decode()
        if status >= 400:
            self._error = header(headers, b"x-amzn-errortype") or ""
            known = bedrock.exception_class(self._error) if self._error else None
            if known is not None:
                status = known[0]
            self._status = status
            return status, replace_content_type(headers, _JSON), _JSON.decode()
        return status, headers, content_type

    def body(self, raw: bytes) -> bytes:
        if self._error is None:
            return raw
        return bedrock.error_answer(self._status, self._error or None, raw)[1]

    def feed(self, chunk: bytes) -> bytes:
        return chunk if self._stream is None else self._stream.feed(chunk)

    def finish(self) -> bytes:
        return b"" if self._stream is None else self._stream.finish()
