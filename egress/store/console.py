"""The console's accounts, sessions and sign-ins in progress (egress.admin)."""

from __future__ import annotations

from typing import Any

from egress.core.records import ConsoleLogin, ConsoleSession, ConsoleUser
from egress.store.sql import SqlBase


class ConsoleTables(SqlBase):
    """Console accounts (argon2 hashes), sessions (token hashes), OIDC and SAML sign-ins in progress,
    and the SAML assertions already used."""

    # --- console accounts and sessions (egress.admin) -----------------------------------------

    def console_user_create(self, user: ConsoleUser) -> bool:
        """False when an account of that name exists already (it is left as it was)."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"INSERT INTO console_users (name, password_hash, role, team, created_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (name) DO NOTHING",
                (user.name, user.password_hash, user.role, user.team, user.created_at),
            )
            created: int = cur.rowcount
            conn.commit()
        return created > 0

    def _console_users(self, where: str = "", args: tuple[Any, ...] = ()) -> list[ConsoleUser]:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                f"SELECT name, password_hash, role, team, created_at FROM console_users {where} ORDER BY name", args
            )
            rows = cur.fetchall()
            conn.commit()
        return [ConsoleUser(str(r[0]), str(r[1]), str(r[2]), r[3], float(r[4])) for r in rows]

    def console_user(self, name: str) -> ConsoleUser | None:
        found = self._console_users(f"WHERE name = {self.param}", (name,))
        return found[0] if found else None

    def console_users(self) -> list[ConsoleUser]:
        return self._console_users()

    def console_user_remove(self, name: str) -> bool:
        """Remove the account and end its sessions."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM console_sessions WHERE user_name = {p}", (name,))
            cur.execute(f"DELETE FROM console_users WHERE name = {p}", (name,))
            removed: int = cur.rowcount
            conn.commit()
        return removed > 0

    def console_session_put(self, session: ConsoleSession) -> None:
        p = self.param
        s = session
        with self._connection() as conn:
            conn.cursor().execute(
                f"INSERT INTO console_sessions (token_hash, user_name, role, team, csrf, created_at, expires_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
                (s.token_hash, s.user, s.role, s.team, s.csrf, s.created_at, s.expires_at),
            )
            conn.commit()

    def console_session(self, token_hash: str) -> ConsoleSession | None:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT token_hash, user_name, role, team, csrf, created_at, expires_at FROM console_sessions "
                f"WHERE token_hash = {self.param}",
                (token_hash,),
            )
            row = cur.fetchone()
            conn.commit()
        if row is None:
            return None
        return ConsoleSession(str(row[0]), str(row[1]), str(row[2]), row[3], str(row[4]), float(row[5]), float(row[6]))

    def console_session_end(self, token_hash: str) -> None:
        with self._connection() as conn:
            conn.cursor().execute(f"DELETE FROM console_sessions WHERE token_hash = {self.param}", (token_hash,))
            conn.commit()

    def console_login_put(self, login: ConsoleLogin, now: float) -> None:
        """Keep a sign-in in progress (and drop those that expired before `now`)."""
        p = self.param
        g = login
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM console_logins WHERE expires_at <= {p}", (now,))
            cur.execute(
                f"INSERT INTO console_logins (login_hash, state, nonce, code_verifier, next_path, expires_at) "
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})",
                (g.login_hash, g.state, g.nonce, g.code_verifier, g.next_path, g.expires_at),
            )
            conn.commit()

    def console_login_take(self, login_hash: str) -> ConsoleLogin | None:
        """The sign-in in progress, removed as it is read: a callback can use it once."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(
                "SELECT login_hash, state, nonce, code_verifier, next_path, expires_at FROM console_logins "
                f"WHERE login_hash = {p}",
                (login_hash,),
            )
            row = cur.fetchone()
            cur.execute(f"DELETE FROM console_logins WHERE login_hash = {p}", (login_hash,))
            taken = cur.rowcount
            conn.commit()
        if row is None or taken == 0:
            return None
        return ConsoleLogin(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]), float(row[5]))

    def console_session_purge(self, now: float) -> int:
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM console_sessions WHERE expires_at <= {self.param}", (now,))
            removed: int = cur.rowcount
            conn.commit()
        return removed

    # --- SAML assertions already used (egress.admin.saml) -------------------------------------

    def saml_assertion_remember(self, assertion: str, expires_at: float, now: float) -> bool:
        """Record an assertion as used until `expires_at`; False when it was recorded already (a
        replay), on this or any process sharing the store. Expired rows are dropped first."""
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"DELETE FROM saml_assertions WHERE expires_at <= {p}", (now,))
            cur.execute(
                f"INSERT INTO saml_assertions (assertion, expires_at) VALUES ({p}, {p}) ON CONFLICT (assertion) DO NOTHING",
                (assertion, expires_at),
            )
            added: int = cur.rowcount
            conn.commit()
        return added > 0
