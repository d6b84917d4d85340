"""The session ledger: values masked earlier in one agent session stay masked where the detectors
no longer see them.

Agents rewrite their history: Claude Code compacts a long conversation into a summary the model
wrote (from masked text, so restored on the way back), and drops the file reads the values were
first found in. A value that only a context-dependent rule detected (a password after
`DB_PASSWORD=`) would then go out in clear inside the summary. The ledger remembers, per user and
session, which values were masked and under which placeholder; the mask stage masks them
wherever they occur again in that session.

Invariants: held in process memory only (bounded, with a TTL), never written anywhere; keyed by
the authenticated user and the client's session id, so one user's session cannot pull another's
values into its restore map; and a remembered value enters a request's restore map only if it
was masked in that request (the model can only cite what it was shown).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping


class SessionLedger:
    def __init__(
        self,
        max_sessions: int = 4096,
        max_values: int = 512,
        ttl_s: float = 24 * 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_values = max_values
        self.ttl_s = ttl_s
        self.clock = clock
        self._sessions: OrderedDict[tuple[str, str], tuple[float, dict[str, str]]] = OrderedDict()
        self._lock = threading.Lock()

    def known(self, user: str, session: str | None) -> Mapping[str, str]:
        """value -> placeholder for the values masked earlier in this session."""
        if not session:
            return {}
        key = (user, session)
        with self._lock:
            entry = self._sessions.get(key)
            if entry is None:
                return {}
            expires, values = entry
            if expires <= self.clock():
                del self._sessions[key]
                return {}
            self._sessions.move_to_end(key)
            return dict(values)

    def remember(self, user: str, session: str | None, placeholders: Mapping[str, str]) -> None:
        """Record the values one request masked (placeholder -> value, as the mask stage gives it)."""
        if not session or not placeholders:
            return
        key = (user, session)
        with self._lock:
            entry = self._sessions.pop(key, None)
            values = entry[1] if entry is not None else {}
            for placeholder, value in placeholders.items():
                values.pop(value, None)
                values[value] = placeholder  # most recent last
            while len(values) > self.max_values:
                del values[next(iter(values))]
            self._sessions[key] = (self.clock() + self.ttl_s, values)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
