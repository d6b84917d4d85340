"""Google OAuth2 access tokens for Vertex AI (and any Google API egress calls): a service-account
key file or Application Default Credentials, through google-auth.

Invariants:
- the event loop never blocks on Google: loading the credentials (ADC may ask the metadata
  server) and every refresh run on a thread;
- a token is cached and refreshed before it expires: within `refresh_margin_s` of its expiry the
  current token is still used while one refresh runs in the background; only an expired (or
  missing) token makes requests wait, all of them for the same single refresh;
- the token is never logged; a failed refresh is an `upstream_unavailable` error naming the
  endpoint and the failure's class, never its text (it may quote a key file).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable

import google.auth
import google.auth.credentials
import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account

from egress.core.errors import EgressError, ErrorCode

log = logging.getLogger("egress.upstream")

CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"

Loader = Callable[[], google.auth.credentials.Credentials]


def key_file_loader(path: str, scopes: tuple[str, ...] = (CLOUD_PLATFORM,)) -> Loader:
    return lambda: service_account.Credentials.from_service_account_file(path, scopes=list(scopes))  # type: ignore[no-untyped-call]


def adc_loader(scopes: tuple[str, ...] = (CLOUD_PLATFORM,)) -> Loader:
    def load() -> google.auth.credentials.Credentials:
        credentials, _project = google.auth.default(scopes=list(scopes))
        return credentials

    return load


class GoogleTokenSource:
    """Access tokens for one endpoint's credentials, cached, refreshed before expiry on a thread."""

    def __init__(self, name: str, load: Loader, refresh_margin_s: float = 300.0) -> None:
        self._name = name  # the endpoint, for errors and logs
        self._load = load
        self._margin = datetime.timedelta(seconds=refresh_margin_s)
        self._credentials: google.auth.credentials.Credentials | None = None
        self._refreshing: asyncio.Future[None] | None = None

    def _state(self) -> tuple[str | None, bool]:
        """(the usable token or None, whether it should be refreshed now)."""
        creds = self._credentials
        if creds is None or not creds.token:
            return None, True
        expiry = creds.expiry  # naive UTC (google-auth's convention); None: never expires
        if expiry is None:
            return creds.token, False
        left = expiry - datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        if left <= datetime.timedelta(seconds=10):  # google-auth's own clock-skew allowance
            return None, True
        return creds.token, left <= self._margin

    async def token(self) -> str:
        token, stale = self._state()
        if token is not None and not stale:
            return token
        refresh = self._refreshing
        if refresh is None:
            refresh = self._refreshing = asyncio.ensure_future(self._refresh())
            # A background refresh's failure is logged in _refresh; the next request retries.
            refresh.add_done_callback(lambda done: done.cancelled() or done.exception())
        if token is not None:
            return token  # still valid: the refresh finishes in the background
        await asyncio.shield(refresh)
        token, _ = self._state()
        if token is None:
            raise EgressError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"endpoint {self._name!r} failed: the Google credentials gave no access token",
                details={"endpoint": self._name, "cause": "credentials"},
            )
        return token

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self._refresh_blocking)
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            log.warning("endpoint %s: Google access token refresh failed (%s)", self._name, type(exc).__name__)
            raise EgressError(
                ErrorCode.UPSTREAM_UNAVAILABLE,
                f"endpoint {self._name!r} failed: could not obtain a Google access token ({type(exc).__name__})",
                details={"endpoint": self._name, "cause": "credentials"},
            ) from None
        finally:
            self._refreshing = None

    def _refresh_blocking(self) -> None:
        if self._credentials is None:
            self._credentials = self._load()
        self._credentials.refresh(google.auth.transport.requests.Request())  # type: ignore[no-untyped-call]
