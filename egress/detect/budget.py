"""A scan's time budget, checked cooperatively by the scan itself.

The scan checks its budget between passes and after every confirmed match, so a scan past its
budget stops within one regex call of it: a refused request stops consuming CPU. A budget on
`time.thread_time` counts the CPU the scanning thread used (a worker's wait in the queue does
not count); one on `time.perf_counter` bounds how long a scan may hold the thread it runs on.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class BudgetExceeded(Exception):
    """The scan used up its budget before it finished; its findings are incomplete."""


class Budget:
    def __init__(
        self, limit_s: float, clock: Callable[[], float] = time.thread_time, *, yield_gil: bool = False
    ) -> None:
        self.limit_s = limit_s
        self.clock = clock
        # A scan on a worker thread yields the GIL now and then, so the event loop's thread never
        # waits a whole switch interval behind the scan's Python code.
        self.yield_gil = yield_gil
        self._deadline = clock() + limit_s
        self._checks = 0

    def check(self) -> None:
        if self.clock() > self._deadline:
            raise BudgetExceeded(f"the scan needed more than {self.limit_s:g} s")
        self._checks += 1
        if self.yield_gil and self._checks % 64 == 0:
            time.sleep(0)
