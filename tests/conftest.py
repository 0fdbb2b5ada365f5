import asyncio
import os
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from bridge.storage import Storage

pytest_plugins = ["tests.fakes.fixtures"]

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


# xdist (``make test``: ``-n 4 --dist loadscope --no-loadscope-reorder``) hands each worker two
# modules at the start, then one whenever it runs short. The modules that spend minutes (real
# stacks waiting for alerts, Chromium, promtool, the replay) go first, one per worker, each
# followed by a short one, and the medium ones right after, so that the long waits overlap with
# everything else instead of queueing behind each other.
_LONGEST = (
    "tests/e2e/test_console_browser.py",
    "tests/e2e/test_payment_burst.py",
    "tests/rules/test_rules.py",
    "tests/rules/test_backtest.py",
    "tests/test_wheels.py",
)
_SHORT = ("tests/test_architecture.py", "tests/test_secrets.py", "tests/test_fakes.py")
_MEDIUM = (
    "tests/e2e/test_up_demo.py",
    "tests/e2e/test_dashboards_and_rollup.py",
    "tests/e2e/test_ha.py",
    "tests/e2e/test_up.py",
    "tests/e2e/test_incidents.py",
    "tests/abuse/test_cardinality_attack.py",
    "tests/e2e/",
)
_ORDER = (*_LONGEST, *_SHORT, *_MEDIUM)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, p in enumerate(_ORDER) if path.startswith(p)), len(_ORDER))

    items.sort(key=rank)
