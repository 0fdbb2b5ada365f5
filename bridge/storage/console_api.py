"""The JSON API's queries (a mixin of ``ConsoleQueries``): personal API tokens and the
incident listing with filters and a keyset cursor.

A token row keeps the SHA-256 of the token, never the token; ``token_by_hash`` finds it by that
(a unique index), and the caller compares the stored hash in constant time as well."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from bridge.storage.console import ConsoleIncident, Scope
from bridge.storage.console_incidents import _INCIDENT_COLUMNS, _incident, _scope


class TokenExists(Exception):
    """The user already has a live token of that name."""


@dataclass(frozen=True)
class ApiToken:
    id: int
    username: str
    name: str
    role: str
    organizations: Scope
    token_hash: str
    prefix: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def live(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True)
class IncidentFilter:
    status: str = ""  # firing | acknowledged | resolved | "" (any)
    severity: str = ""
    organization_id: str = ""
    within: Scope = None  # the token's organizations (None: every one)


_COLUMNS = (
    "id, username, name, role, organizations, token_hash, prefix, created_at, expires_at,"
    " last_used_at, revoked_at"
)
_INSERT = (
    "INSERT INTO api_tokens (username, name, role, organizations, token_hash, prefix, created_at,"  # noqa: S608 - fixed columns
    f" expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {_COLUMNS}"
)
# last_used_at is written at most once a minute per token (not on every request)
TOUCH_SECONDS = 60


def _token(r: Any) -> ApiToken:
    return ApiToken(*r[:4], None if r[4] is None else tuple(r[4]), *r[5:11])


class ApiReads:
    """Tokens and the API's incident listing."""

    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def create_token(
        self,
        username: str,
        name: str,
        role: str,
        organizations: Scope,
        token_hash: str,
        prefix: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> ApiToken:
        """Store a new token (its hash); TokenExists when the user has a live one so named."""
        async with self._conn() as conn:
            try:
                r = await conn.fetchrow(
                    _INSERT,
                    username,
                    name,
                    role,
                    None if organizations is None else list(organizations),
                    token_hash,
                    prefix,
                    now,
                    expires_at,
                )
            except asyncpg.UniqueViolationError:
                raise TokenExists(name) from None
        return _token(r)

    async def revoke_token(self, username: str, name: str, now: datetime) -> bool:
        """Revoke the user's live token of that name; False when there is none."""
        async with self._conn() as conn:
            done = await conn.execute(
                "UPDATE api_tokens SET revoked_at = $3"
                " WHERE username = $1 AND name = $2 AND revoked_at IS NULL",
                username,
                name,
                now,
            )
        return done.endswith(" 1")

    async def tokens(self, username: str | None = None) -> list[ApiToken]:
        """Every token (of one user), revoked ones included, oldest first."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_COLUMNS} FROM api_tokens"  # noqa: S608 - fixed columns
                " WHERE $1::text IS NULL OR username = $1 ORDER BY username, created_at, id",
                username,
            )
        return [_token(r) for r in rows]

    async def token_by_hash(self, token_hash: str) -> ApiToken | None:
        async with self._conn() as conn:
            r = await conn.fetchrow(
                f"SELECT {_COLUMNS} FROM api_tokens"  # noqa: S608 - fixed columns
                " WHERE token_hash = $1",
                token_hash,
            )
        return _token(r) if r else None

    async def touch_token(self, token_id: int, now: datetime) -> None:
        """Record a use (at most once a minute per token: no write per request)."""
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE api_tokens SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL"
                " OR last_used_at < $2::timestamptz - make_interval(secs => $3))",
                token_id,
                now,
                TOUCH_SECONDS,
            )

    async def api_incidents(
        self, where: IncidentFilter, before_id: int | None, limit: int
    ) -> list[ConsoleIncident]:
        """Incidents (not merged into another) matching the filter, newest id first, with ids
        below ``before_id`` (the cursor) when given."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                f"SELECT {_INCIDENT_COLUMNS} FROM incidents"  # noqa: S608 - fixed columns
                " WHERE merged_into IS NULL"
                " AND ($1::text[] IS NULL OR organizations && $1::text[])"
                " AND ($2 = '' OR status = $2) AND ($3 = '' OR severity = $3)"
                " AND ($4 = '' OR $4 = ANY(organizations))"
                " AND ($5::bigint IS NULL OR id < $5) ORDER BY id DESC LIMIT $6",
                _scope(where.within),
                where.status,
                where.severity,
                where.organization_id,
                before_id,
                limit,
            )
        return [_incident(r) for r in rows]


class ApiStore(Protocol):
    """What the JSON API reads and writes beyond ``ConsoleStore`` (``ConsoleQueries`` has
    both; see ``ApiReads`` for what each means)."""

    async def create_token(
        self,
        username: str,
        name: str,
        role: str,
        organizations: Scope,
        token_hash: str,
        prefix: str,
        now: datetime,
        expires_at: datetime | None,
    ) -> ApiToken: ...

    async def revoke_token(self, username: str, name: str, now: datetime) -> bool: ...

    async def tokens(self, username: str | None = None) -> list[ApiToken]: ...

    async def token_by_hash(self, token_hash: str) -> ApiToken | None: ...

    async def touch_token(self, token_id: int, now: datetime) -> None: ...

    async def api_incidents(
        self, where: IncidentFilter, before_id: int | None, limit: int
    ) -> list[ConsoleIncident]: ...
