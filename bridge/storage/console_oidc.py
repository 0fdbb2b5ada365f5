"""Console users the OpenID provider signs in (a mixin of ``ConsoleQueries``).

Such a user is bound to the provider's (issuer, subject), not to their name: the name is
taken from the ID token at the first sign-in and kept (an e-mail changed at the provider
does not move the account), and a name already held by a local (password) user or by another
subject is refused, never taken over. Their password hash is empty, so the password form
never admits them. Role and organizations are written from the claims at every sign-in."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import asyncpg

from bridge.storage.console import AuditEntry, ConsoleUser, Scope
from bridge.storage.console_rows import insert_audit

USER_COLUMNS = (
    "username, password_hash, role, session_epoch, organizations, oidc_subject IS NOT NULL"
)


class NameTaken(Exception):
    """The name belongs to another console user (a local one, or another subject)."""


@dataclass(frozen=True)
class OidcIdentity:
    """Who the provider vouched for, and the rights their claims map to."""

    issuer: str
    subject: str
    username: str  # the name to create the user with (kept for an existing subject)
    role: str
    organizations: Scope


def user_row(r: asyncpg.Record) -> ConsoleUser:
    return ConsoleUser(
        r[0], r[1], r[2], r[3], None if r[4] is None else tuple(r[4]), oidc=bool(r[5])
    )


class OidcReads:
    _conn: Callable[[], AbstractAsyncContextManager[asyncpg.Connection]]

    async def sign_in_oidc(
        self, who: OidcIdentity, now: datetime, audit: AuditEntry
    ) -> ConsoleUser:
        """Create or update the subject's user with the claims' role and organizations, and
        write ``audit`` (its username set to the user's) in the same transaction; NameTaken
        when the name is another user's."""
        organizations = None if who.organizations is None else list(who.organizations)
        async with self._conn() as conn, conn.transaction():
            for _ in range(2):
                username = await conn.fetchval(
                    "UPDATE console_users SET role = $3, organizations = $4, updated_at = $5"
                    " WHERE oidc_issuer = $1 AND oidc_subject = $2 RETURNING username",
                    who.issuer,
                    who.subject,
                    who.role,
                    organizations,
                    now,
                )
                if username is not None:
                    break
                # ON CONFLICT DO NOTHING: a concurrent first sign-in of the same subject
                # inserts first; the loop then finds it by its subject
                username = await conn.fetchval(
                    "INSERT INTO console_users (username, password_hash, role, created_at,"
                    " updated_at, organizations, oidc_issuer, oidc_subject)"
                    " VALUES ($1, '', $2, $3, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
                    " RETURNING username",
                    who.username,
                    who.role,
                    now,
                    organizations,
                    who.issuer,
                    who.subject,
                )
                if username is not None:
                    break
            else:
                raise NameTaken(who.username)
            await insert_audit(conn, dataclasses.replace(audit, username=username))
            r = await conn.fetchrow(
                f"SELECT {USER_COLUMNS} FROM console_users WHERE username = $1",  # noqa: S608
                username,
            )
        return user_row(r)

    async def withdraw_oidc(self, issuer: str, subject: str, audit: AuditEntry) -> str | None:
        """The provider's claims give the subject no role any more: their user keeps no
        rights (a viewer of no organization, so their API tokens see nothing either) and
        their sessions end; ``audit`` is written for them. Their name, or None (no user)."""
        async with self._conn() as conn, conn.transaction():
            username = await conn.fetchval(
                "UPDATE console_users SET role = 'viewer', organizations = '{}',"
                " session_epoch = session_epoch + 1, updated_at = $3"
                " WHERE oidc_issuer = $1 AND oidc_subject = $2 RETURNING username",
                issuer,
                subject,
                audit.at,
            )
            if username is not None:
                await insert_audit(conn, dataclasses.replace(audit, username=username))
        return username


class OidcStore(Protocol):
    """What the OpenID sign-in writes beyond ``ConsoleStore`` (``ConsoleQueries`` has both;
    see ``OidcReads``)."""

    async def sign_in_oidc(
        self, who: OidcIdentity, now: datetime, audit: AuditEntry
    ) -> ConsoleUser: ...

    async def withdraw_oidc(self, issuer: str, subject: str, audit: AuditEntry) -> str | None: ...
