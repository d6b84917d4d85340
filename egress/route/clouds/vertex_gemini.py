"""Gemini on Google Vertex AI (`api: vertex-gemini`): the Gemini API's own request and answer
(the same JSON as Google AI Studio's), below the endpoint's project and location, with OAuth2
access tokens from a service-account key file or Application Default Credentials (the same
token source as `api: vertex`; `credentials: {env: VAR}` is a ready access token).

The endpoint's `base_url` names the project and location, as for `api: vertex`:
`https://europe-west4-aiplatform.googleapis.com/v1/projects/P/locations/europe-west4`; a request
goes to `{base_url}/publishers/google/models/{model}:generateContent`, or
`:streamGenerateContent?alt=sse`. countTokens is not routed here (the adapter is told only
whether the answer streams): Gemini's countTokens is answered by `api: gemini` endpoints.
Answers and errors are Google's on both services: they pass as they are.
"""

from __future__ import annotations

from urllib.parse import quote

from multidict import CIMultiDict

from egress.route.clouds.base import Headers, Prepared
from egress.route.clouds.vertex import VertexAdapter


class VertexGeminiAdapter(VertexAdapter):
    """Vertex's credentials (`VertexAdapter.authorize`); Gemini's path and body."""

    def prepare(self, model: str, stream: bool, body: bytes, headers: CIMultiDict[str]) -> Prepared:
        method = "streamGenerateContent" if stream else "generateContent"
        path = f"/publishers/google/models/{quote(model, safe='-._~')}:{method}"
        return Prepared(path, "alt=sse" if stream else "", body)

    def answer(self) -> SameAnswer:  # type: ignore[override]
        return SameAnswer()


class SameAnswer:
    """An answer already in the client's API (Gemini's on both services)."""

    __slots__ = ()

    def head(self, status: int, headers: Headers, content_type: str) -> tuple[int, Headers, str]:
        return status, headers, content_type

    def body(self, raw: bytes) -> bytes:
        return raw

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def finish(self) -> bytes:
        return b""
