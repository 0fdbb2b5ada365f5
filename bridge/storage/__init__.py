"""The bridge's storage: PostgreSQL (Supabase in production; an embedded server by default).

Small modules by concern: ``store.py`` (the pool, ``Storage`` and ``Transaction``),
``alerts.py`` (the alert upsert and what one notification writes), ``outbox.py`` (deliveries,
their claims and the LISTEN/NOTIFY wake-up), ``state.py`` (``bridge_state``), ``routing.py``
(per-organization preferences), ``history.py`` (the rollup's tables and the retention purge),
``incidents.py`` (incidents: the assignment lock, the open ones, their writes), ``oncall.py``
(on-call overrides), ``escalations.py`` (escalation walks, actions' writes, replay records),
``console.py`` + ``console_queries.py`` + ``console_incidents.py`` (the console's interface,
its queries and its incident queries; ``console_rows.py``, the rows they decode),
``migrations.py``, ``connection.py`` (URLs and availability) and ``embedded.py`` (the server in
the state directory).

Everything the webhook writes for one notification happens inside one ``transaction()``; the
decisions in between (routing, fatigue) are plain Python working on what the transaction read.
Deduplication is done by the database (unique keys and ``ON CONFLICT``), never by reading first,
so concurrent replicas cannot both win.
"""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bridge.storage.connection import check_url
from bridge.storage.embedded import EmbeddedPostgres
from bridge.storage.incidents import IncidentRow
from bridge.storage.store import Storage, Transaction
from bridge.storage.types import (
    ALERT_TABLES,
    AlertState,
    ClaimedDelivery,
    ConfigurationRow,
    FatigueState,
    NewDelivery,
    NewEvents,
    NotificationRecord,
    PreferenceRow,
    StorageUnavailable,
)

__all__ = [
    "ALERT_TABLES",
    "AlertState",
    "ClaimedDelivery",
    "ConfigurationRow",
    "FatigueState",
    "IncidentRow",
    "NewDelivery",
    "NewEvents",
    "NotificationRecord",
    "PreferenceRow",
    "Storage",
    "StorageUnavailable",
    "Transaction",
    "open_database",
    "open_storage",
]


def open_storage(url: str, *, pool_size: int = 10) -> Storage:
    """The database a ``DATABASE_URL`` names (not opened yet); ValueError for anything but
    PostgreSQL, naming what to use instead."""
    return Storage(check_url(url), pool_size=pool_size)


@asynccontextmanager
async def open_database(
    url: str, state_dir: Path, *, pool_size: int = 10
) -> AsyncIterator[Storage]:
    """The opened storage of ``url``, or with ``url`` empty of the embedded PostgreSQL in
    ``state_dir`` (joined for the block, stopped after it when no other process uses it)."""
    if url:
        async with open_storage(url, pool_size=pool_size) as storage:
            yield storage
        return
    server = EmbeddedPostgres(state_dir)
    embedded = await asyncio.to_thread(server.acquire)
    try:
        async with open_storage(embedded, pool_size=pool_size) as storage:
            yield storage
    finally:
        await asyncio.to_thread(server.release)
