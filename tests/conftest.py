import ast
import asyncio
import io
import os
import threading
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from bridge.storage import Storage

pytest_plugins = ["tests.fakes.fixtures"]

# CPython 3.11 keeps the AST constructor's recursion depth in one interpreter-wide counter
# (CPython gh-106905): two threads inside ast.parse at once can make either raise
# "SystemError: AST constructor recursion depth mismatch". The OpenAPI contract test runs
# hypothesis (which parses its filter lambdas) in a worker thread while pytest, on the main
# thread, parses sources for assertion rewriting and tracebacks; CI failed on it once. One lock
# around ast.parse, for this process only, keeps the two apart.
_AST_PARSE_LOCK = threading.RLock()
_ast_parse = ast.parse


def _serialised_ast_parse(*args: object, **kwargs: object) -> ast.AST:
    with _AST_PARSE_LOCK:
        return _ast_parse(*args, **kwargs)


ast.parse = _serialised_ast_parse

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


# A test's database is cloned from a migrated template, and given back afterwards to the
# worker's pool emptied instead of dropped: PostgreSQL forces a checkpoint on every DROP
# DATABASE (all the cluster's dirty pages written and synced), which made teardown the slowest
# part of most database tests (2 s each with four workers writing, where the test itself took
# 0.3 s). The databases left at the end are dropped then.
_FREE: list[str] = []  # emptied databases of this worker, ready for the next test
_DROP: list[str] = []  # databases that could not be emptied back to the template's state

# The template's shape: relations with their column counts, constraints, functions, triggers,
# extensions. A test that changed it (or left the database refusing connections) has its
# database dropped rather than reused.
_SHAPE = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(concat_ws(':', c.relname, c.relkind, c.relnatts, c.relrowsecurity), ','
                     ORDER BY c.relname)
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'),
  (SELECT string_agg(conname, ',' ORDER BY conname) FROM pg_constraint c
     JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'),
  (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'),
  (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal),
  (SELECT string_agg(extname, ',' ORDER BY extname) FROM pg_extension),
  (SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace)))
"""


class _Template:
    """What emptying a database restores: the template's shape, its rows (the migrations'
    bookkeeping and seeds) and its sequences."""

    def __init__(self, name: str, shape: str, tables: list[str], rows: dict[str, bytes]) -> None:
        self.name = name
        self.shape = shape
        self.tables = tables
        self.rows = rows
        # every table emptied (the names come from the catalog) and every sequence restarted;
        # with the foreign keys' triggers off, in any order
        self.reset = "".join(
            [
                "SET LOCAL session_replication_role = replica;",
                *(f'DELETE FROM "{t}";' for t in tables),  # noqa: S608
                "SELECT setval(c.oid, s.seqstart, false) FROM pg_class c",
                " JOIN pg_sequence s ON s.seqrelid = c.oid",
            ]
        )


async def _read_template(name: str) -> _Template:
    conn = await asyncpg.connect(_pg_url(name))
    try:
        tables = [
            r["tablename"]
            for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
            )
        ]
        rows: dict[str, bytes] = {}
        for table in tables:
            # the names come from the catalog
            if await conn.fetchval(f'SELECT EXISTS (SELECT 1 FROM "{table}")'):  # noqa: S608
                buffer = io.BytesIO()
                await conn.copy_from_table(table, output=buffer, format="binary")
                rows[table] = buffer.getvalue()
        return _Template(name, await conn.fetchval(_SHAPE), tables, rows)
    finally:
        await conn.close()


async def _empty(url: str, template: _Template) -> bool:
    """Back to the template's state: every table emptied, sequences restarted, the template's
    rows copied back; False when the database can no longer be brought back that way."""
    name = url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
    finally:
        await admin.close()
    try:
        conn = await asyncpg.connect(url)
    except (OSError, asyncpg.PostgresError):
        return False
    try:
        if await conn.fetchval(_SHAPE) != template.shape:
            return False
        async with conn.transaction():
            # DELETE, not TRUNCATE: a TRUNCATE gives each table and index a new file (0.9 s for
            # these 30 tables, where the DELETEs take 30 ms)
            await conn.execute(template.reset)
            for table, data in template.rows.items():
                await conn.copy_to_table(table, source=io.BytesIO(data), format="binary")
        return True
    except asyncpg.PostgresError:
        return False
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_template() -> Iterator[_Template]:
    """A database with the bridge's migrations applied, cloned for each test."""

    name = f"passiton_tpl_{uuid.uuid4().hex[:10]}"

    async def create() -> _Template:
        await _admin(f'CREATE DATABASE "{name}"')
        storage = Storage(_pg_url(name))
        await storage.open()
        try:
            await storage.migrate()
        finally:
            await storage.close()
        return await _read_template(name)

    template = asyncio.run(create())
    yield template
    leftovers = [*_FREE, *_DROP, name]
    _FREE.clear()
    _DROP.clear()
    asyncio.run(_admin(*(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)' for n in leftovers)))


@pytest.fixture
def pg_database(pg_template: _Template) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test; its URL."""
    if _FREE:
        name = _FREE.pop()
    else:
        name = f"passiton_test_{uuid.uuid4().hex[:12]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template.name}"'))
    yield _pg_url(name)
    if asyncio.run(_empty(_pg_url(name), pg_template)):
        _FREE.append(name)
    else:
        _DROP.append(name)


@pytest.fixture
def db_url(pg_database: str) -> str:
    """The bridge's database: a fresh, migrated PostgreSQL database (see ``pg_database``)."""
    return pg_database


# xdist (``make test``: ``-n 6 --dist loadscope --no-loadscope-reorder``) hands each worker two
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
    "tests/clients/test_typescript_suite.py",
    "tests/e2e/",
)
_ORDER = (*_LONGEST, *_SHORT, *_MEDIUM)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, p in enumerate(_ORDER) if path.startswith(p)), len(_ORDER))

    items.sort(key=rank)
