"""Google Vertex AI endpoints (`api: vertex`) for Anthropic models: OAuth2 access tokens.

- `credentials: {key_file: /path/sa.json}`: a service account's key file;
- `credentials: {chain: true}`: Application Default Credentials (GOOGLE_APPLICATION_CREDENTIALS,
  gcloud's login, the metadata server);
- `credentials: {env: VAR}`: a ready access token (egress.route.upstream.upstream_headers).

Tokens come from `google_auth.GoogleTokenSource` (cached, refreshed before expiry on a thread).
The endpoint's `base_url` names the project and location:
`https://europe-west1-aiplatform.googleapis.com/v1/projects/P/locations/europe-west1`.
"""

from __future__ import annotations

from multidict import CIMultiDict

from egress.core.endpoint import Endpoint
from egress.route.clouds.base import Headers, Prepared, replace_content_type
from egress.route.clouds.google_auth import GoogleTokenSource, adc_loader, key_file_loader
from egress.wire import vertex

_JSON = b"application/json"


class VertexAdapter:
    def __init__(self, endpoint: Endpoint) -> None:
        creds = endpoint.credentials
        self._tokens: GoogleTokenSource | None = None
        if creds.key_file is not None:
            self._tokens = GoogleTokenSource(endpoint.name, key_file_loader(creds.key_file))
        elif creds.chain:
            self._tokens = GoogleTokenSource(endpoint.name, adc_loader())

    def prepare(self, model: str, stream: bool, body: bytes, headers: CIMultiDict[str]) -> Prepared:
        return Prepared(vertex.predict_path(model, stream), "", vertex.request_body(body))

    async def authorize(self, url: str, headers: CIMultiDict[str], body: bytes) -> None:
        if self._tokens is not None:
            headers["authorization"] = f"Bearer {await self._tokens.token()}"

    def answer(self) -> VertexAnswer:
        return VertexAnswer()


class VertexAnswer:
    __slots__ = ("_stream", "_status", "_error")

    def __init__(self) -> None:
        self._stream: vertex.StreamFilter | None = None
        self._status = 0
        self._error = False

    def head(self, status: int, headers: Headers, content_type: str) -> tuple[int, Headers, str]:
        if 200 <= status < 300 and content_type.startswith("text/event-stream"):
            self._stream = vertex.StreamFilter()
        elif status >= 400:
            self._error = True
            self._status = status
            # Google's UNAVAILABLE is Anthropic's overloaded: 529, which every Anthropic client retries.
            return (529 if status == 503 else status), replace_content_type(headers, _JSON), _JSON.decode()
        return status, headers, content_type

    def body(self, raw: bytes) -> bytes:
        return vertex.error_answer(self._status, raw)[1] if self._error else raw

    def feed(self, chunk: bytes) -> bytes:
        return chunk if self._stream is None else self._stream.feed(chunk)

    def finish(self) -> bytes:
        return b"" if self._stream is None else self._stream.finish()
