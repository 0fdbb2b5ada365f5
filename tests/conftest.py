import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from bridge.storage import Storage

# The console tests' fixtures (``console``) live with their helpers in tests/console_support.py.
pytest_plugins = ["tests.fakes.fixtures", "tests.console_support"]

PG_ADMIN_URL = os.environ.get("PASSITON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A database with the bridge's migrations applied, cloned for each test."""

    name = f"passiton_tpl_{uuid.uuid4().hex[:10]}"

    async def create() -> None:
        await _admin(f'CREATE DATABASE "{name}"')
        storage = Storage(_pg_url(name))
        await storage.open()
        try:
            await storage.migrate()
        finally:
            await storage.close()

    asyncio.run(create())
    yield name
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_database(pg_template: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test; its URL."""
    name = f"passiton_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"'))
    yield _pg_url(name)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_url(pg_database: str) -> str:
    """The bridge's database: a fresh, migrated PostgreSQL database (see ``pg_database``)."""
    return pg_database
