"""`egress admin` (console accounts) as separate processes, then a sign-in with the account on a
real `egress serve`."""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import httpx

from tests.integration.test_serve_cli import env, run, start_serve  # noqa: F401 - `env` is a fixture
from tests.support.console import login

PASSWORD = "a long enough password"


def test_add_list_remove_accounts_then_sign_in_on_egress_serve(env: dict, tmp_path: Path) -> None:  # noqa: F811
    made = run(["admin", "add-user", "ada", "--role", "admin", "--password-stdin"], env, input=PASSWORD + "\n")
    assert made.returncode == 0 and "created console account ada (admin, every team)" in made.stderr
    lead = ["admin", "add-user", "lin", "--role", "team-lead", "--team", "payments", "--password-stdin"]
    assert run(lead, env, input=PASSWORD + "\n").returncode == 0

    again = run(["admin", "add-user", "ada", "--role", "admin", "--password-stdin"], env, input=PASSWORD + "\n")
    assert again.returncode == 2 and "exists already" in again.stderr
    no_team = run(["admin", "add-user", "max", "--role", "team-lead", "--password-stdin"], env, input=PASSWORD + "\n")
    assert no_team.returncode == 2 and "a team lead needs --team" in no_team.stderr
    short = run(["admin", "add-user", "max", "--role", "admin", "--password-stdin"], env, input="short\n")
    assert short.returncode == 2 and "at least 12 characters" in short.stderr
    role = run(["admin", "add-user", "max", "--role", "owner", "--password-stdin"], env, input=PASSWORD + "\n")
    assert role.returncode == 2 and "unknown role 'owner'" in role.stderr

    listed = run(["admin", "list-users"], env)
    assert listed.returncode == 0
    assert "ada" in listed.stdout and "lin" in listed.stdout and "payments" in listed.stdout
    assert "team-lead" in listed.stdout and "argon2" not in listed.stdout and "max" not in listed.stdout
    # Only argon2 hashes are stored.
    db = sqlite3.connect(tmp_path / "data" / "egress.db")
    stored = str(db.execute("SELECT * FROM console_users").fetchall())
    db.close()
    assert PASSWORD not in stored and stored.count("$argon2id$") == 2

    proc, url = start_serve(env)
    try:
        with httpx.Client(base_url=url, headers={"origin": url}) as browser:
            assert login(browser, "ada", PASSWORD).status_code == 303
            assert "ada (admin)" in browser.get("/admin/traffic").text
        removed = run(["admin", "remove-user", "ada"], env)
        assert removed.returncode == 0 and "its sessions have ended" in removed.stderr
        with httpx.Client(base_url=url, headers={"origin": url}) as browser:
            assert login(browser, "ada", PASSWORD).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert f"Console: {url}/admin" in out
    gone = run(["admin", "remove-user", "ada"], env)
    assert gone.returncode == 2 and "no console account named 'ada'" in gone.stderr
