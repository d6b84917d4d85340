"""Commands name what they create after the user who runs them, also under a user id with no
passwd entry (a container's arbitrary runAsUser)."""

import getpass
import os

import pytest

from egress.cli.options import os_user


def test_the_login_name_when_there_is_one() -> None:
    assert os_user() == getpass.getuser()


def test_a_user_id_without_a_passwd_entry_is_named_by_its_number(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_entry() -> str:
        raise KeyError(f"getpwuid(): uid not found: {os.getuid()}")

    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(getpass, "getuser", no_entry)
    assert os_user() == f"uid-{os.getuid()}"
