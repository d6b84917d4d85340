"""prometheus_client's multiprocess mode for `egress serve --workers N`.

The supervisor creates a fresh directory for this run (nothing of an earlier run is summed),
names it in PROMETHEUS_MULTIPROC_DIR before the workers start (prometheus_client reads the
variable when a worker imports it), marks a worker that exited as dead (its live gauges stop
counting; its counters stay, they happened), and removes the directory when it stops.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from prometheus_client.multiprocess import mark_process_dead

from egress.telemetry.exposition import MULTIPROC_ENV

log = logging.getLogger("egress.telemetry")


class MultiprocDir:
    """`with MultiprocDir(parent):` around the supervisor's run."""

    def __init__(self, parent: Path) -> None:
        self.parent = parent
        self.path: Path | None = None

    def __enter__(self) -> MultiprocDir:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix="metrics-", dir=self.parent))
        os.environ[MULTIPROC_ENV] = str(self.path)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        os.environ.pop(MULTIPROC_ENV, None)
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)

    def worker_exited(self, pid: int) -> None:
        """A worker is gone (stopped, crashed or killed): drop its live gauge files."""
        if self.path is not None:
            mark_process_dead(pid, str(self.path))  # type: ignore[no-untyped-call]
