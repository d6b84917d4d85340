"""Console accounts: who may sign in, with which role, and what each role may see.

Invariants: only argon2 hashes of passwords are stored; a team lead always has a team and sees
only records, approvals, flows and replays of that team; an admin sees everything.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from egress.core.records import ConsoleUser

MIN_PASSWORD_CHARS = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")


class Role(StrEnum):
    ADMIN = "admin"
    TEAM_LEAD = "team_lead"


class AccountError(ValueError):
    """An account that cannot be created as asked (the message says why)."""


def parse_role(text: str) -> Role:
    """`admin`, `team-lead` or `team_lead`."""
    try:
        return Role(text.replace("-", "_"))
    except ValueError:
        raise AccountError(f"unknown role {text!r}: use admin or team-lead") from None


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in person a page is rendered for."""

    name: str
    role: Role
    team: str | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def scope(self) -> str | None:
        """The team every query is limited to; None for an admin (no limit)."""
        return None if self.is_admin else self.team

    def sees(self, team: str | None) -> bool:
        """Whether a record, approval or replay of `team` is visible. A team lead never sees a
        record without a team."""
        return self.is_admin or (self.team is not None and team == self.team)


class Passwords:
    """argon2id hashes with the library's default cost (RFC 9106's second recommendation)."""

    def __init__(self) -> None:
        self._hasher = PasswordHasher()
        # Checked against when the account does not exist, so both cases cost the same.
        self._decoy = self._hasher.hash("egress-decoy-password")

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def check(self, stored_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash or self._decoy, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False


def new_account(passwords: Passwords, name: str, role: Role, team: str | None, password: str) -> ConsoleUser:
    if not _NAME.match(name):
        raise AccountError(f"invalid account name {name!r}: letters, digits and . _ @ - (up to 128)")
    if role is Role.TEAM_LEAD and not team:
        raise AccountError("a team lead needs --team")
    if role is Role.ADMIN and team:
        raise AccountError("an admin sees every team: leave out --team")
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"the password must have at least {MIN_PASSWORD_CHARS} characters")
    return ConsoleUser(
        name=name, password_hash=passwords.hash(password), role=role.value, team=team, created_at=time.time()
    )
