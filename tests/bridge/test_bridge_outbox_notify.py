"""LISTEN/NOTIFY on the outbox: a delivery enqueued by one replica wakes the workers of every
replica at once (no poll interval), and the listener comes back after the database drops it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import asyncpg

from bridge.storage import NewDelivery, open_storage
from bridge.storage.outbox import OutboxListener


def _delivery() -> NewDelivery:
    return NewDelivery("slack", "g", b'{"status":"firing"}', datetime.now(UTC))


async def _wait(listener: OutboxListener) -> None:
    await asyncio.wait_for(listener.listening.wait(), 10)


async def test_an_insert_by_one_replica_wakes_the_other(pg_database: str) -> None:
    woken = asyncio.Event()
    other = open_storage(pg_database)
    listener = other.outbox_listener(woken.set)
    assert listener is not None
    listener.start()
    try:
        await _wait(listener)
        woken.clear()  # it wakes once on (re)connecting, for what came in meanwhile
        async with open_storage(pg_database) as writer:
            async with writer.transaction() as tx:
                await tx.insert_deliveries([_delivery()], datetime.now(UTC))
                await asyncio.sleep(0.2)
                assert not woken.is_set(), "NOTIFY is delivered at commit, not before"
            await asyncio.wait_for(woken.wait(), 5)
            woken.clear()
            await writer.enqueue([_delivery()], datetime.now(UTC))  # outside a notification
            await asyncio.wait_for(woken.wait(), 5)
    finally:
        await listener.stop()


async def test_a_rolled_back_insert_wakes_nobody(pg_database: str) -> None:
    woken = asyncio.Event()
    listener = OutboxListener(pg_database, woken.set)
    listener.start()
    try:
        await _wait(listener)
        woken.clear()
        async with open_storage(pg_database) as writer:
            try:
                async with writer.transaction() as tx:
                    await tx.insert_deliveries([_delivery()], datetime.now(UTC))
                    raise RuntimeError("abort")
            except RuntimeError:
                pass
            await asyncio.sleep(0.5)
            assert not woken.is_set()
            assert await writer.query("SELECT id FROM alert_deliveries") == []
    finally:
        await listener.stop()


async def test_the_listener_reconnects_after_its_connection_is_killed(pg_database: str) -> None:
    woken = asyncio.Event()
    listener = OutboxListener(pg_database, woken.set, retry_seconds=0.1)
    listener.start()
    try:
        await _wait(listener)
        name = pg_database.rsplit("/", 1)[1]
        admin = await asyncpg.connect(pg_database)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'",
                name,
            )
        finally:
            await admin.close()
        assert killed == 1
        deadline = asyncio.get_running_loop().time() + 10
        while listener.listening.is_set() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        await _wait(listener)
        woken.clear()
        async with open_storage(pg_database) as writer:
            await writer.enqueue([_delivery()], datetime.now(UTC))
        await asyncio.wait_for(woken.wait(), 5)
    finally:
        await listener.stop()


def test_no_listener_behind_a_transaction_pooler() -> None:
    storage = open_storage("postgresql://u@db:6543/postgres")
    assert storage.outbox_listener(lambda: None) is None
