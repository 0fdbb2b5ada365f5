"""The Now page's queries (a mixin of ``ConsoleQueries``): the alerts it shows, filtered by
Alertmanager matchers in SQL, and each user's saved views (migration 0012).

The matchers are user input: they become parameters, never SQL text, and their regular
expressions run in PostgreSQL (anchored as Alertmanager anchors them), never in Python's
backtracking ``re``. PostgreSQL's engine is a DFA/NFA hybrid without backtracking's blow-up
for the patterns the console lets through (no back-references: ``console/triage.py`` refuses
them, like Alertmanager's RE2), and the statement runs under a ``statement_timeout``, so a
pathological pattern costs at most that and becomes a refusal (``FilterRefused``), not a
stuck page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from bridge.matchers import Matcher
from bridge.storage.console import AlertRow, Scope
from bridge.storage.console_rows import ALERT_COLUMNS, alert_row
from bridge.storage.types import ALERT_TABLES

FILTER_TIMEOUT_MS = 2000  # the filtered query's statement_timeout
MAX_VIEWS = 50  # saved views per user
# label names kept in their own columns (the same values as in ``labels``)
_COLUMN_OF = {
    "alertname": "alertname",
    "severity": "severity",
    "organization_id": "coalesce(organization_id, '')",
}
_IGNORE_CASE = "(?i)"


class FilterRefused(ValueError):
    """PostgreSQL refused a matcher (a regular expression it cannot compile) or gave up on it
    (the statement timeout); the message says which."""


@dataclass(frozen=True)
class SavedView:
    id: int
    name: str
    query: str
    created_at: datetime


def _condition(matcher: Matcher, arg: Callable[[Any], str]) -> str:
    """One matcher as a SQL condition (a missing label is ``""``, regexes fully anchored)."""
    column = _COLUMN_OF.get(matcher.name) or f"coalesce(labels->>{arg(matcher.name)}, '')"
    if matcher.op in ("=", "!="):
        return f"{column} {'=' if matcher.op == '=' else '<>'} {arg(matcher.value)}"
    value, operator = matcher.value, "~"
    if value.startswith(_IGNORE_CASE):  # RE2's flag: PostgreSQL takes it as ~*, not inline
        value, operator = value.removeprefix(_IGNORE_CASE), "~*"
    negate = "!" if matcher.op == "!~" else ""
    return f"{column} {negate}{operator} {arg(f'^(?:{value})$')}"


def now_alerts_sql(matchers: Sequence[Matcher], limit: int) -> tuple[str, list[Any]]:
    """The statement and its arguments: $1 incident ids, $2 the scope."""
    args: list[Any] = [None, None]

    def arg(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    conditions = "".join(f" AND {_condition(m, arg)}" for m in matchers)
    union = " UNION ALL ".join(
        f"SELECT '{t}' AS tbl, {ALERT_COLUMNS} FROM {t}"  # noqa: S608 - fixed names
        " WHERE (incident_id = ANY($1::bigint[]) OR (status = 'firing' AND incident_id IS NULL))"
        f" AND ($2::text[] IS NULL OR organization_id = ANY($2::text[])){conditions}"
        for t in ALERT_TABLES
    )
    sql = f"SELECT * FROM ({union}) a ORDER BY starts_at, tbl, id LIMIT {arg(limit)}"  # noqa: S608
    return sql, args


class NowReads:
    """The Now page's alerts and the saved views."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def now_alerts(
        self, incident_ids: Sequence[int], scope: Scope, matchers: Sequence[Matcher], limit: int
    ) -> list[AlertRow]:
        sql, args = now_alerts_sql(matchers, limit)
        args[0] = list(incident_ids)
        args[1] = None if scope is None else list(scope)
        async with self._conn() as conn:
            try:
                async with conn.transaction():
                    if matchers:
                        await conn.execute(f"SET LOCAL statement_timeout = {FILTER_TIMEOUT_MS}")
                    rows = await conn.fetch(sql, *args)
            except asyncpg.InvalidRegularExpressionError as exc:
                raise FilterRefused(f"invalid regular expression: {exc}") from None
            except asyncpg.QueryCanceledError:
                raise FilterRefused(
                    f"the filter took over {FILTER_TIMEOUT_MS / 1000:g}s; simplify its regular"
                    " expressions"
                ) from None
        return [alert_row(r[0], r[1:]) for r in rows]

    async def saved_views(self, username: str) -> list[SavedView]:
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT id, name, query, created_at FROM console_saved_views"
                " WHERE username = $1 ORDER BY lower(name), id",
                username,
            )
        return [SavedView(*r) for r in rows]

    async def save_view(
        self, username: str, name: str, query: str, now: datetime
    ) -> SavedView | None:
        async with self._conn() as conn, conn.transaction():
            # the user's row orders concurrent saves, so the cap holds
            await conn.execute(
                "SELECT 1 FROM console_users WHERE username = $1 FOR UPDATE", username
            )
            count = await conn.fetchval(
                "SELECT count(*) FROM console_saved_views WHERE username = $1 AND name <> $2",
                username,
                name,
            )
            if count >= MAX_VIEWS:
                return None
            r = await conn.fetchrow(
                "INSERT INTO console_saved_views (username, name, query, created_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (username, name)"
                " DO UPDATE SET query = excluded.query"
                " RETURNING id, name, query, created_at",
                username,
                name,
                query,
                now,
            )
        return SavedView(*r)

    async def delete_view(self, username: str, view_id: int) -> bool:
        async with self._conn() as conn:
            done = await conn.execute(
                "DELETE FROM console_saved_views WHERE id = $1 AND username = $2",
                view_id,
                username,
            )
        return done.endswith(" 1")


class NowStore(Protocol):
    """What the Now page reads and writes beyond ``ConsoleStore`` (``ConsoleQueries`` has
    both)."""

    async def now_alerts(
        self, incident_ids: Sequence[int], scope: Scope, matchers: Sequence[Matcher], limit: int
    ) -> list[AlertRow]:
        """The alerts of these incidents and the firing alerts of no incident, within the
        scope, that every matcher matches (``@``-names excluded by the caller), oldest first.
        Raises ``FilterRefused`` when PostgreSQL refuses or gives up on a regex."""
        ...

    async def saved_views(self, username: str) -> list[SavedView]:
        """The user's saved views, by name."""
        ...

    async def save_view(
        self, username: str, name: str, query: str, now: datetime
    ) -> SavedView | None:
        """Save (or replace, by name) a view; None when the user has ``MAX_VIEWS`` already."""
        ...

    async def delete_view(self, username: str, view_id: int) -> bool:
        """Delete one of the user's views; False when they have none with that id."""
        ...
