"""Usage rows (egress/limits): tokens and spend per caller and model, per minute and per day.

Invariant: a batch adds to the rows (an upsert that sums), so batches from several replicas and
flushes in any order add up to the same totals; one batch is one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from egress.store.sql import SqlBase

TABLES = ("usage_minute", "usage_day")
_COLUMNS = "period, user_name, team, key_id, model, requests, input_tokens, output_tokens, spend_micro"


@dataclass(frozen=True, slots=True)
class UsageRow:
    period: int  # the minute's or day's start, Unix seconds (UTC)
    user: str
    team: str  # '' when none
    key_id: str  # '' when none
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    spend_micro: int


class UsageTables(SqlBase):
    def usage_add(self, minutes: Sequence[UsageRow], days: Sequence[UsageRow]) -> None:
        p = self.param
        with self._connection() as conn:
            cur = conn.cursor()
            for table, rows in (("usage_minute", minutes), ("usage_day", days)):
                if not rows:
                    continue
                cur.executemany(
                    f"INSERT INTO {table} ({_COLUMNS}) VALUES ({', '.join([p] * 9)}) "
                    "ON CONFLICT (period, user_name, team, key_id, model) DO UPDATE SET "
                    f"requests = {table}.requests + excluded.requests, "
                    f"input_tokens = {table}.input_tokens + excluded.input_tokens, "
                    f"output_tokens = {table}.output_tokens + excluded.output_tokens, "
                    f"spend_micro = {table}.spend_micro + excluded.spend_micro",
                    [
                        (
                            r.period,
                            r.user,
                            r.team,
                            r.key_id,
                            r.model,
                            r.requests,
                            r.input_tokens,
                            r.output_tokens,
                            r.spend_micro,
                        )
                        for r in rows
                    ],
                )
            conn.commit()

    def usage_rows(self, table: str, since: float, team: str | None = None, user: str | None = None) -> list[UsageRow]:
        """Rows of `usage_minute` or `usage_day` from `since` (Unix seconds), oldest first."""
        if table not in TABLES:
            raise ValueError(f"unknown usage table {table!r}")
        p = self.param
        where = [f"period >= {p}"]
        params: list[object] = [int(since)]
        if team is not None:
            where.append(f"team = {p}")
            params.append(team)
        if user is not None:
            where.append(f"user_name = {p}")
            params.append(user)
        with self._connection() as conn:
            cur = conn.cursor()
            cur.execute(f"SELECT {_COLUMNS} FROM {table} WHERE {' AND '.join(where)} ORDER BY period", tuple(params))
            rows = cur.fetchall()
            conn.commit()
        return [UsageRow(*(r[0:5]), *(int(v) for v in r[5:9])) for r in rows]
