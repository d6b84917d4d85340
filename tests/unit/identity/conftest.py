from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from egress.identity.oidc import OidcVerifier
from egress.identity.settings import OidcSettings
from tests.support.oidc_issuer import LocalIssuer


class Clock:
    """The verifier's clock, moved by the test (no sleeping, no timing)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[LocalIssuer]:
    started = LocalIssuer().start()
    yield started
    started.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
async def make_verifier(issuer: LocalIssuer, clock: Clock) -> AsyncIterator[Callable[..., OidcVerifier]]:
    started: list[OidcVerifier] = []

    async def make(**changes) -> OidcVerifier:
        settings = OidcSettings(**{"issuer": issuer.url, "audience": ("egress",), **changes})
        verifier = OidcVerifier(settings, clock=clock)
        await verifier.start()
        started.append(verifier)
        return verifier

    yield make
    for verifier in started:
        await verifier.aclose()
