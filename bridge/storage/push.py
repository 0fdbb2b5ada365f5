"""Web Push subscriptions (``push_subscriptions``, migration 0015): the browsers each console
user turned notifications on in. The console adds and removes them; the ``webpush`` channel
reads a user's and records how each send went (a push service that says the subscription is
gone, 404 or 410, deletes it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bridge.storage.store import Storage

# A push service's endpoint is a URL of a few hundred characters at most; keys are fixed size.
MAX_ENDPOINT = 2048
MAX_USER_AGENT = 300
MAX_SUBSCRIPTIONS_PER_USER = 20

_COLUMNS = (
    "id, username, endpoint, p256dh, auth, user_agent, created_at, last_success_at,"
    " last_failure_at, last_failure"
)


@dataclass(frozen=True)
class PushSubscription:
    id: int
    username: str
    endpoint: str
    p256dh: str
    auth: str
    user_agent: str
    created_at: datetime
    last_success_at: datetime | None
    last_failure_at: datetime | None
    last_failure: str | None


class TooManySubscriptions(Exception):
    """The user has ``MAX_SUBSCRIPTIONS_PER_USER`` browsers already."""


class PushSubscriptions:
    """The subscriptions on the bridge's database (the ``PushStore`` the channel reads)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    async def for_user(self, username: str) -> list[PushSubscription]:
        async with self.storage.transaction() as tx:
            rows = await tx.conn.fetch(
                f"SELECT {_COLUMNS} FROM push_subscriptions WHERE username = $1 ORDER BY id",  # noqa: S608
                username,
            )
        return [PushSubscription(*row) for row in rows]

    async def add(
        self,
        username: str,
        endpoint: str,
        p256dh: str,
        auth: str,
        user_agent: str,
        now: datetime,
    ) -> PushSubscription:
        """Store (or refresh: same endpoint, new keys) a browser's subscription for ``username``;
        an endpoint another user had moves to this one (the browser is theirs now)."""
        async with self.storage.transaction() as tx:
            conn = tx.conn
            # serialise a user's additions so the cap holds under concurrent requests
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext('push:' || $1))", username)
            count = await conn.fetchval(
                "SELECT count(*) FROM push_subscriptions WHERE username = $1 AND endpoint <> $2",
                username,
                endpoint,
            )
            if count >= MAX_SUBSCRIPTIONS_PER_USER:
                raise TooManySubscriptions(username)
            row = await conn.fetchrow(
                f"""INSERT INTO push_subscriptions
                      (username, endpoint, p256dh, auth, user_agent, created_at)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (endpoint) DO UPDATE SET username = EXCLUDED.username,
                      p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
                      user_agent = EXCLUDED.user_agent, created_at = EXCLUDED.created_at,
                      last_success_at = NULL, last_failure_at = NULL, last_failure = NULL
                    RETURNING {_COLUMNS}""",  # noqa: S608
                username,
                endpoint,
                p256dh,
                auth,
                user_agent[:MAX_USER_AGENT],
                now,
            )
        return PushSubscription(*row)

    async def remove(self, username: str, *, endpoint: str = "", id: int = 0) -> bool:
        """Delete one of ``username``'s subscriptions (by endpoint or id); False if none was."""
        async with self.storage.transaction() as tx:
            deleted = await tx.conn.fetchval(
                "DELETE FROM push_subscriptions WHERE username = $1 AND (endpoint = $2 OR id = $3)"
                " RETURNING 1",
                username,
                endpoint,
                id,
            )
        return deleted is not None

    async def gone(self, id: int) -> None:
        """The push service no longer knows this subscription (404/410): forget it."""
        async with self.storage.transaction() as tx:
            await tx.conn.execute("DELETE FROM push_subscriptions WHERE id = $1", id)

    async def succeeded(self, id: int, now: datetime) -> None:
        async with self.storage.transaction() as tx:
            await tx.conn.execute(
                "UPDATE push_subscriptions SET last_success_at = $2 WHERE id = $1", id, now
            )

    async def failed(self, id: int, now: datetime, error: str) -> None:
        async with self.storage.transaction() as tx:
            await tx.conn.execute(
                "UPDATE push_subscriptions SET last_failure_at = $2, last_failure = $3"
                " WHERE id = $1",
                id,
                now,
                error[:500],
            )
