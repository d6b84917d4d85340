"""`egress keys create --from-csv`: the people to issue keys to, read and checked as a whole.

The file is validated completely before any key is created: every bad row is reported with its
line number, and one bad row means nothing is created. The result (each secret shown once) is
written as CSV to stdout or to a new file that only its owner can read.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from rich.console import Console

# The columns a key has (egress.core.records.GatewayKey): who it belongs to, and their team.
REQUIRED_COLUMNS = ("user",)
OPTIONAL_COLUMNS = ("team",)
OUTPUT_COLUMNS = ("user", "team", "key_id", "key")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True, slots=True)
class KeyRequest:
    line: int  # where it was in the file (1 is the header)
    user: str
    team: str | None


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class IssuedKey:
    user: str
    team: str | None
    key_id: str
    secret: str  # shown once: written to the output, never stored


@dataclass(frozen=True, slots=True)
class KeyRequests:
    requests: tuple[KeyRequest, ...]
    problems: tuple[RowProblem, ...]


def _name_problem(what: str, value: str) -> str | None:
    if len(value) > MAX_NAME_LENGTH:
        return f"{what} is longer than {MAX_NAME_LENGTH} characters"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return f"{what} contains a control character"
    return None


def read_key_requests(text: str, allow_duplicate_users: bool = False) -> KeyRequests:
    """Every row of the file, or every problem in it (with its line). A header row names the
    columns: `user` (required) and `team` (optional), in any order and case."""
    problems: list[RowProblem] = []
    requests: list[KeyRequest] = []
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        return KeyRequests((), (RowProblem(reader.line_num, f"not valid CSV: {exc}"),))
    if header is None:
        return KeyRequests((), (RowProblem(1, "the file is empty: expected a header row `user,team`"),))
    header_line = reader.line_num
    columns = [cell.strip().lower() for cell in header]
    known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    for name in columns:
        if name not in known:
            problems.append(
                RowProblem(
                    header_line,
                    f"unknown column {name!r}: a gateway key holds {', '.join(known)} only",
                )
            )
    for name in REQUIRED_COLUMNS:
        if name not in columns:
            problems.append(RowProblem(header_line, f"missing column {name!r} in the header row"))
    for name in set(columns):
        if columns.count(name) > 1:
            problems.append(RowProblem(header_line, f"column {name!r} appears twice"))
    if problems:
        return KeyRequests((), tuple(problems))
    user_at, team_at = columns.index("user"), columns.index("team") if "team" in columns else None
    first_line: dict[str, int] = {}
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # blank lines are allowed
            if len(row) != len(columns):
                problems.append(
                    RowProblem(line, f"expected {len(columns)} fields ({','.join(columns)}), got {len(row)}")
                )
                continue
            user = row[user_at].strip()
            team = row[team_at].strip() if team_at is not None else ""
            if not user:
                problems.append(RowProblem(line, "the user is empty"))
                continue
            bad = _name_problem("the user", user) or (_name_problem("the team", team) if team else None)
            if bad is not None:
                problems.append(RowProblem(line, bad))
                continue
            if user in first_line and not allow_duplicate_users:
                problems.append(
                    RowProblem(
                        line,
                        f"user {user!r} already has a row (line {first_line[user]}); "
                        "pass --allow-duplicate-users to give one person several keys",
                    )
                )
                continue
            first_line.setdefault(user, line)
            requests.append(KeyRequest(line, user, team or None))
    except csv.Error as exc:
        problems.append(RowProblem(reader.line_num, f"not valid CSV: {exc}"))
    if not problems and not requests:
        problems.append(RowProblem(header_line, "no rows after the header: nothing to create"))
    return KeyRequests(tuple(requests), tuple(problems))


def open_private_output(path: Path) -> TextIO:
    """A new file only its owner can read or write (mode 0600, whatever the umask); an existing
    file is never overwritten (it may hold keys issued before) and a symlink is never followed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


def write_issued(keys: list[IssuedKey], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    for key in keys:
        writer.writerow((key.user, key.team or "", key.key_id, key.secret))


def create_keys_from_csv(
    config_path: Path | None, csv_path: Path, output_path: Path | None, allow_duplicate_users: bool
) -> None:
    """Validate the whole file, then create every key in one transaction, then write them out.
    Exit status 2, with nothing created, on any problem in the file or with the output file."""
    # Imported here: `egress --help` and the other commands do not pay for the store and the app.
    from egress.cli.options import load_or_exit, open_store
    from egress.gateway.auth import new_key

    err = Console(stderr=True, highlight=False)
    try:
        text = csv_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.print(f"[red]error[/red] cannot read {csv_path}: {exc}")
        sys.exit(2)
    parsed = read_key_requests(text, allow_duplicate_users=allow_duplicate_users)
    if parsed.problems:
        for problem in parsed.problems:
            err.print(f"[red]error[/red] {csv_path}:{problem.line}: {problem.message}", soft_wrap=True)
        err.print(f"{len(parsed.problems)} problem(s) in {csv_path}; no key was created", soft_wrap=True)
        sys.exit(2)
    config = load_or_exit(config_path)
    out: TextIO = sys.stdout
    if output_path is not None:
        try:
            out = open_private_output(output_path)
        except OSError as exc:
            err.print(
                f"[red]error[/red] cannot create {output_path}: {exc.strerror} (an existing file is never overwritten)"
            )
            sys.exit(2)
    issued: list[IssuedKey] = []
    records = []
    for request in parsed.requests:
        secret, key = new_key(request.user, request.team)
        records.append(key)
        issued.append(IssuedKey(request.user, request.team, key.key_id, secret))
    store = open_store(config)
    try:
        store.create_keys(records)
    except BaseException:
        if output_path is not None:
            out.close()
            output_path.unlink()
        raise
    finally:
        store.close()
    write_issued(issued, out)
    if output_path is not None:
        out.close()
        err.print(f"created {len(issued)} keys, written to {output_path} (mode 0600); each key is shown once")
    else:
        out.flush()
        err.print(f"created {len(issued)} keys; each key is shown once")
