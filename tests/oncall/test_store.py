"""Overrides in PostgreSQL (migration 0006, bridge/storage/oncall.py): added, found by the span
they touch, removed; the table's checks hold for writes that bypass the store; swaps are
atomic; the migration can run again and enables row level security."""

from __future__ import annotations

import asyncpg
import pytest

from bridge.oncall.config import load_oncall
from bridge.oncall.schedule import Override, on_call
from bridge.storage import open_storage
from bridge.storage.migrations import load_migrations
from tests.oncall.support import EXAMPLE, utc


async def test_add_list_and_remove_overrides(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        cover = await storage.add_override(
            "primary",
            "carol",
            utc(2026, 12, 4),
            utc(2026, 12, 5),
            replaces="alice",
            reason="dentist",
            created_by="admin",
            now=utc(2026, 12, 1),
        )
        extra = await storage.add_override("secondary", "bob", utc(2026, 12, 10), utc(2026, 12, 11))
        assert cover == Override(
            cover.id,
            "primary",
            "carol",
            "alice",
            utc(2026, 12, 4),
            utc(2026, 12, 5),
            "dentist",
            "admin",
            utc(2026, 12, 1),
        )
        assert extra.replaces is None
        assert extra.created_at is not None
        assert extra.id > cover.id
        # overlapping [start, end): touching ends do not overlap
        assert await storage.overrides(utc(2026, 12, 1), utc(2026, 12, 31)) == [cover, extra]
        assert await storage.overrides(utc(2026, 12, 5), utc(2026, 12, 10)) == []
        assert await storage.overrides(utc(2026, 12, 4, 23), utc(2026, 12, 10, 1)) == [cover, extra]
        assert await storage.overrides(utc(2026, 12, 1), utc(2026, 12, 31), "secondary") == [extra]
        # what they mean, read back
        config = load_oncall(EXAMPLE)
        found = await storage.overrides(utc(2026, 12, 1), utc(2026, 12, 31))
        assert on_call(config, "primary", utc(2026, 12, 4, 12), found) == ["carol"]
        assert await storage.remove_override(cover.id) is True
        assert await storage.remove_override(cover.id) is False
        assert await storage.overrides(utc(2026, 12, 1), utc(2026, 12, 31)) == [extra]


async def test_checks_in_the_store_and_in_the_table(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        with pytest.raises(ValueError, match="end must be after its start"):
            await storage.add_override("primary", "bob", utc(2026, 12, 5), utc(2026, 12, 5))
        with pytest.raises(ValueError, match="cannot cover their own time"):
            await storage.add_override(
                "primary", "bob", utc(2026, 12, 5), utc(2026, 12, 6), replaces="bob"
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await storage.execute(
                "INSERT INTO oncall_overrides (schedule_id, person_id, starts_at, ends_at)"
                " VALUES ('primary', 'bob', '2026-12-06', '2026-12-05')"
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await storage.execute(
                "INSERT INTO oncall_overrides"
                " (schedule_id, person_id, replaces, starts_at, ends_at)"
                " VALUES ('primary', 'bob', 'bob', '2026-12-05', '2026-12-06')"
            )


async def test_a_swap_is_two_covers_written_together(db_url: str) -> None:
    async with open_storage(db_url) as storage:
        first, second = await storage.add_swap(
            "primary",
            "bob",
            "alice",
            (utc(2026, 11, 30, 8), utc(2026, 12, 7, 8)),
            (utc(2026, 12, 7, 8), utc(2026, 12, 14, 8)),
            reason="holiday",
            created_by="bob",
        )
        assert (first.person_id, first.replaces, second.person_id, second.replaces) == (
            "bob",
            "alice",
            "alice",
            "bob",
        )
        config = load_oncall(EXAMPLE)
        found = await storage.overrides(utc(2026, 11, 1), utc(2027, 1, 1))
        assert on_call(config, "primary", utc(2026, 12, 1), found) == ["bob"]
        assert on_call(config, "primary", utc(2026, 12, 8), found) == ["alice"]
        # the second span is invalid: neither is stored
        with pytest.raises(ValueError):
            await storage.add_swap(
                "primary",
                "bob",
                "alice",
                (utc(2026, 12, 14, 8), utc(2026, 12, 21, 8)),
                (utc(2026, 12, 21, 8), utc(2026, 12, 21, 8)),
            )
        await storage.execute(
            "ALTER TABLE oncall_overrides ADD CONSTRAINT no_carol CHECK (person_id <> 'carol')"
        )
        with pytest.raises(asyncpg.CheckViolationError):
            await storage.add_swap(
                "primary",
                "alice",
                "carol",
                (utc(2026, 12, 14, 8), utc(2026, 12, 21, 8)),
                (utc(2026, 12, 21, 8), utc(2026, 12, 28, 8)),
            )
        assert len(await storage.overrides(utc(2026, 11, 1), utc(2027, 1, 1))) == 2


async def test_the_migration_runs_again_and_enables_row_level_security(db_url: str) -> None:
    (migration,) = [m for m in load_migrations() if m.version == "0006_oncall_overrides"]
    async with open_storage(db_url) as storage:
        await storage.execute(migration.sql)
        await storage.execute(migration.sql)
        rows = await storage.query(
            "SELECT relrowsecurity FROM pg_class WHERE relname = 'oncall_overrides'"
        )
        assert rows == [{"relrowsecurity": True}]
