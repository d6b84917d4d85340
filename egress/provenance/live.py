"""The gateway's view of the code index: a Lookup rebuilt whenever the stored index changes.

Every `refresh_s` a background task reads the index's generation (one row); when it moved, the
whole index is read and a new Lookup built off the event loop, then swapped in as one reference
assignment, so a concurrent `match` sees the old lookup or the new one, never a mix. Callbacks
given to `on_change` run after each swap (the scanner drops the results it cached from the old).

A process without an event loop (a worker process of gateway/worker_pool.py) passes `poll_s`
instead: `match` itself checks the generation when the last check is that old.

A store that cannot be read leaves the last lookup in place (logged): code already indexed is
still recognised during a database outage.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from egress.core.health import describe
from egress.core.provenance import CodeMatch, IndexedFile, IndexedRepo
from egress.provenance.lookup import Lookup, LookupSettings

log = logging.getLogger("egress.provenance")


class IndexStore(Protocol):
    def provenance_generation(self) -> int: ...

    def provenance_repos(self) -> list[IndexedRepo]: ...

    def provenance_files(self) -> Iterator[tuple[str, IndexedFile]]: ...


class LiveIndex:
    def __init__(
        self,
        store: IndexStore,
        settings: LookupSettings | None = None,
        refresh_s: float = 5.0,
        poll_s: float | None = None,
    ) -> None:
        self._store = store
        self._settings = settings or LookupSettings()
        self._refresh_s = refresh_s
        self._poll_s = poll_s
        self._checked = float("-inf")  # time.monotonic() of the last poll
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()  # one rebuild at a time
        self.lookup = Lookup.empty(self._settings)
        self._generation = -1
        self._task: asyncio.Task[None] | None = None

    def on_change(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    @property
    def generation(self) -> int:
        return self._generation

    def match(self, text: str) -> tuple[CodeMatch, ...]:
        if self._poll_s is not None and time.monotonic() - self._checked >= self._poll_s:
            self._checked = time.monotonic()
            try:
                self.refresh()
            except Exception as exc:  # noqa: BLE001 - any store failure: keep the last lookup
                log.warning("code index not refreshed (the last one stays in use): %s", describe(exc))
        return self.lookup.match(text)

    def refresh(self) -> bool:
        """Rebuild if the stored index changed; True when it did. Blocking: call off the loop."""
        with self._lock:
            generation = self._store.provenance_generation()
            if generation == self._generation:
                return False
            public = frozenset(r.name for r in self._store.provenance_repos() if r.public)
            self.lookup = Lookup.build(self._store.provenance_files(), public, self._settings, generation)
            self._generation = generation
        log.info(
            "code index generation %d: %d fingerprints of %d repositories (%.1f MB)",
            generation,
            len(self.lookup),
            len(self.lookup.repos),
            self.lookup.nbytes / 1e6,
        )
        for callback in self._callbacks:
            callback()
        return True

    async def start(self) -> None:
        """Load the index now (the first requests are judged against it), then keep it fresh."""
        await self._refresh_logged()
        self._task = asyncio.create_task(self._loop(), name="code-index-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        try:
            await asyncio.to_thread(self.refresh)
        except Exception as exc:  # noqa: BLE001 - any store failure: keep serving the last lookup
            log.warning("code index not refreshed (the last one stays in use): %s", describe(exc))
