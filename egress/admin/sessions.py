"""Console sessions, kept server-side in the store.

Why server-side rather than signed cookies: signing out, removing an account and expiry take
effect at once and on every replica sharing the store, and the cookie carries only a random
token (256 bits) whose SHA-256 is what the store keeps, so a copy of the database cannot be used
to sign in. Each session has its own CSRF token, checked on every state-changing form.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable

from egress.admin.accounts import Role, Viewer
from egress.core.records import ConsoleSession
from egress.store.base import SqlStore

COOKIE = "egress_console"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class SessionBook:
    """Start, find and end sessions. Synchronous (store I/O): call from a worker thread."""

    def __init__(self, store: SqlStore, ttl_s: float, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.clock = clock

    def start(self, viewer: Viewer) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie's token (shown to the browser only) and the session."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        session = ConsoleSession(
            token_hash=token_hash(token),
            user=viewer.name,
            role=viewer.role.value,
            team=viewer.team,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.ttl_s,
        )
        self.store.console_session_purge(now)
        self.store.console_session_put(session)
        return token, session

    def find(self, token: str) -> ConsoleSession | None:
        """The live session of this token; an expired one is removed and not returned."""
        if not token:
            return None
        session = self.store.console_session(token_hash(token))
        if session is None:
            return None
        if session.expires_at <= self.clock():
            self.store.console_session_end(session.token_hash)
            return None
        return session

    def end(self, token: str) -> None:
        if token:
            self.store.console_session_end(token_hash(token))


def viewer_of(session: ConsoleSession) -> Viewer:
    return Viewer(name=session.user, role=Role(session.role), team=session.team)
