"""Request checks and response headers every console page gets.

- CSP without inline scripts or styles (htmx is a same-origin file), no framing, no caching;
- a state-changing request must carry the session's CSRF token (compared in constant time) AND
  come from the console's own origin (Origin, or Referer when a browser sends no Origin): a
  request with neither is refused.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from starlette.requests import Request

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def security_headers(tls: bool) -> dict[str, str]:
    headers = {
        "content-security-policy": CSP,
        "x-frame-options": "DENY",
        "x-content-type-options": "nosniff",
        "referrer-policy": "same-origin",
        "cache-control": "no-store",
        "cross-origin-opener-policy": "same-origin",
    }
    if tls:
        headers["strict-transport-security"] = "max-age=31536000"
    return headers


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def own_origins(request: Request, public_url: str | None) -> set[str]:
    """The console's origin as the browser addressed it (scheme + Host), and the configured
    public URL's origin when set."""
    origins = set()
    host = request.headers.get("host")
    if host:
        origins.add(f"{request.url.scheme}://{host}".lower())
    if public_url:
        configured = _origin_of(public_url)
        if configured:
            origins.add(configured)
    return origins


def same_origin(request: Request, public_url: str | None) -> bool:
    origin = request.headers.get("origin")
    claimed = _origin_of(origin) if origin and origin != "null" else None
    if claimed is None:
        referer = request.headers.get("referer")
        claimed = _origin_of(referer) if referer else None
    return claimed is not None and claimed in own_origins(request, public_url)


def token_matches(expected: str, submitted: object) -> bool:
    return isinstance(submitted, str) and bool(submitted) and hmac.compare_digest(expected, submitted)


def tls(request: Request) -> bool:
    return request.url.scheme == "https"
