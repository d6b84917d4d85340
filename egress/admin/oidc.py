"""Console sign-in through the organisation's identity provider (egress.identity.oidc_login does
the protocol: authorization code, PKCE, ID-token verification), and who that makes the person.

The sign-in in progress is kept in the store, keyed by the SHA-256 of a random cookie: the PKCE
verifier never reaches the browser, any replica can finish the sign-in, and a callback can use it
once. Roles: a person in one of `admin_groups` is an admin; otherwise a person whose token names
a team is that team's lead; anyone else is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from egress.admin.accounts import Role, Viewer
from egress.core.records import ConsoleLogin
from egress.identity.oidc import OidcVerifier, TokenError, VerifiedToken
from egress.identity.oidc_login import LoginError, OidcLogin, PendingLogin
from egress.store.base import SqlStore

LOGIN_COOKIE = "egress_oidc_login"
LOGIN_TTL_S = 600.0


class SignInRefused(Exception):
    """The sign-in did not succeed; the message is safe to show (no code, token or claim value)."""


@dataclass(frozen=True, slots=True)
class RoleMapping:
    groups_claim: str = "groups"
    admin_groups: tuple[str, ...] = ()

    def viewer(self, token: VerifiedToken) -> Viewer | None:
        return self.viewer_of(token.user, token.claims.get(self.groups_claim), token.team)

    def viewer_of(self, user: str, groups: object, team: str | None) -> Viewer | None:
        """The role of `user` with these groups (a list or one value) and team; SAML sign-in
        (egress.admin.saml) maps its attributes with this same rule."""
        listed = groups if isinstance(groups, list | tuple) else [groups]
        if any(isinstance(g, str) and g in self.admin_groups for g in listed):
            return Viewer(user, Role.ADMIN, None)
        if team:
            return Viewer(user, Role.TEAM_LEAD, team)
        return None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ConsoleOidc:
    def __init__(
        self,
        verifier: OidcVerifier,
        login: OidcLogin,
        roles: RoleMapping,
        store: SqlStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.verifier = verifier
        self.login = login
        self.roles = roles
        self.store = store
        self.clock = clock
        self._started = False
        self._start_lock = asyncio.Lock()

    async def _ensure_started(self) -> None:
        async with self._start_lock:
            if not self._started:
                await self.verifier.start()
                self._started = True

    async def aclose(self) -> None:
        if self._started:
            await self.verifier.aclose()
            self._started = False

    async def begin(self, next_path: str) -> tuple[str, str]:
        """A new sign-in: (the login cookie's value, the provider URL to send the browser to)."""
        await self._ensure_started()
        try:
            pending = await self.login.begin()
        except LoginError as exc:
            raise SignInRefused(exc.message) from None
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        record = ConsoleLogin(
            _digest(cookie), pending.state, pending.nonce, pending.code_verifier, next_path, now + LOGIN_TTL_S
        )
        await asyncio.to_thread(self.store.console_login_put, record, now)
        return cookie, pending.authorize_url

    async def finish(self, cookie: str, state: str | None, code: str | None, error: str | None) -> tuple[Viewer, str]:
        """The person signed in, and the console page to go to. Raises SignInRefused."""
        record = await asyncio.to_thread(self.store.console_login_take, _digest(cookie)) if cookie else None
        if record is None or record.expires_at <= self.clock():
            raise SignInRefused("this sign-in is unknown, used or expired: start again")
        await self._ensure_started()
        pending = PendingLogin(record.state, record.nonce, record.code_verifier, authorize_url="")
        try:
            token = await self.login.finish(pending, state=state, code=code, error=error)
        except LoginError as exc:
            raise SignInRefused(exc.message) from None
        except TokenError as exc:
            raise SignInRefused(f"the identity provider's ID token was refused: {exc}") from None
        viewer = self.roles.viewer(token)
        if viewer is None:
            raise SignInRefused(f"{token.user} has no console role (not in an admin group, no team)")
        return viewer, record.next_path
