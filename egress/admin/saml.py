"""Console sign-in through a SAML 2.0 identity provider (egress.identity.saml does the protocol
and the checks on the assertion), and who that makes the person.

SP-initiated only: `begin` sends an AuthnRequest and keeps the sign-in in progress in the store
(the console_logins table, as OIDC does), keyed by the SHA-256 of a random cookie, with a random
RelayState and the request's ID. The ACS answer is accepted only with that cookie, that
RelayState and that InResponseTo, once: a response posted into another browser (login CSRF,
session fixation) or replayed into a fresh sign-in has nothing to match. An assertion that
passed is recorded in the store until it expires (saml_assertions), so it cannot sign anyone in
again on any replica. Roles come from the attributes as OIDC's come from claims (RoleMapping).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from egress.admin.accounts import Viewer
from egress.admin.oidc import RoleMapping, SignInRefused
from egress.core.records import ConsoleLogin
from egress.identity.saml import SamlIdentity, SamlRefused
from egress.store.base import SqlStore

if TYPE_CHECKING:
    from egress.identity.saml_sp import ServiceProvider  # pysaml2: imported only when configured

log = logging.getLogger("egress.admin.saml")

SAML_COOKIE = "egress_saml_login"
SAML_LOGIN_TTL_S = 600.0
# console_logins is shared with OIDC: a SAML row says so in code_verifier (OIDC's is never this).
_SAML_MARK = "saml"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class ConsoleSaml:
    def __init__(
        self,
        provider: ServiceProvider,
        roles: RoleMapping,
        store: SqlStore,
        *,
        user_attribute: str | None,
        team_attribute: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.provider = provider
        self.roles = roles
        self.store = store
        self.user_attribute = user_attribute
        self.team_attribute = team_attribute
        self.clock = clock
        self._refresh_lock = asyncio.Lock()

    def metadata(self) -> str:
        return self.provider.metadata()

    async def _fresh(self) -> None:
        """Read the IdP's metadata again when it is due (one reader at a time)."""
        if self.provider.due():
            async with self._refresh_lock:
                if self.provider.due():
                    await asyncio.to_thread(self.provider.refresh)

    async def begin(self, next_path: str) -> tuple[str, str]:
        """A new sign-in: (the login cookie's value, the IdP URL to send the browser to)."""
        await self._fresh()
        relay_state = secrets.token_urlsafe(24)
        try:
            redirect = await asyncio.to_thread(self.provider.begin, relay_state)
        except SamlRefused as exc:
            raise SignInRefused(exc.message) from None
        cookie = secrets.token_urlsafe(32)
        now = self.clock()
        record = ConsoleLogin(
            _digest(cookie), relay_state, redirect.request_id, _SAML_MARK, next_path, now + SAML_LOGIN_TTL_S
        )
        await asyncio.to_thread(self.store.console_login_put, record, now)
        return cookie, redirect.url

    async def finish(self, cookie: str, relay_state: str | None, saml_response: str | None) -> tuple[Viewer, str]:
        """The person signed in, and the console page to go to. Raises SignInRefused."""
        record = await asyncio.to_thread(self.store.console_login_take, _digest(cookie)) if cookie else None
        if record is None or record.code_verifier != _SAML_MARK or record.expires_at <= self.clock():
            raise SignInRefused(
                "this sign-in is unknown, used or expired (or was started in another browser): start again"
            )
        if relay_state is None or not hmac.compare_digest(relay_state.encode(), record.state.encode()):
            raise SignInRefused("the sign-in's RelayState does not match (start the sign-in again)")
        if not saml_response:
            raise SignInRefused("the identity provider sent no SAML response")
        await self._fresh()
        try:
            who = await asyncio.to_thread(self.provider.finish, saml_response, record.nonce)
        except SamlRefused as exc:
            raise SignInRefused(exc.message) from None
        now = self.clock()
        kept_until = max(who.expires_at, now) + self.provider.settings.clock_skew_s
        if not await asyncio.to_thread(self.store.saml_assertion_remember, who.replay_key, kept_until, now):
            raise SignInRefused("this SAML assertion was used already (replay)")
        viewer = self.viewer(who)
        if viewer is None:
            raise SignInRefused("the signed-in person has no console role (not in an admin group, no team)")
        return viewer, record.next_path

    def viewer(self, who: SamlIdentity) -> Viewer | None:
        user = (who.first(self.user_attribute) if self.user_attribute else None) or who.name_id
        groups = list(who.attributes.get(self.roles.groups_claim, ()))
        return self.roles.viewer_of(user, groups, who.first(self.team_attribute))
