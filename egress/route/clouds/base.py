"""What a cloud adapter is (egress.route.clouds.adapter builds one per cloud endpoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict

Headers = list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """What one attempt sends to a cloud endpoint below its base URL."""

    path: str
    query: str
    body: bytes


class Answer(Protocol):
    """One upstream answer, seen as the client's API: `head` first, then `body`, or `feed`
    for each chunk and `finish` at the end. Stateful: one per answer."""

    def head(self, status: int, headers: Headers, content_type: str) -> tuple[int, Headers, str]: ...

    def body(self, raw: bytes) -> bytes: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


class CloudAdapter(Protocol):
    def prepare(self, model: str, stream: bool, body: bytes, headers: CIMultiDict[str]) -> Prepared:
        """The cloud's path, query and body for a masked Messages request (model: the mapped id)."""
        ...

    async def authorize(self, url: str, headers: CIMultiDict[str], body: bytes) -> None:
        """Put the credential on the final request. Nothing about it changes afterwards."""
        ...

    def answer(self) -> Answer: ...


def replace_content_type(headers: Headers, content_type: bytes) -> Headers:
    """The headers with the body's type (and no length: the body is rewritten)."""
    out = [(k, v) for k, v in headers if k not in (b"content-type", b"content-length")]
    out.append((b"content-type", content_type))
    return out


def header(headers: Headers, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in headers if k == name), None)
