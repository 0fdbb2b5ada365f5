"""Storage details: PgBouncer/Supabase pooler safety, URL handling, SQLite refused."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bridge.app import BRIDGE, create_app
from bridge.storage import open_storage
from bridge.storage.connection import pooler_dsn
from tests.bridge.support import AUTH, alert_rows, am_alert, body, make_config, notifiers, payload


def test_pooler_dsn():
    assert pooler_dsn("postgresql://u:p@db:5432/app") == ("postgresql://u:p@db:5432/app", False)
    assert pooler_dsn("postgres://u:p@pooler.supabase.com:6543/postgres?sslmode=require") == (
        "postgresql://u:p@pooler.supabase.com:6543/postgres?sslmode=require",
        True,
    )
    assert pooler_dsn("postgresql://u@db/app?pgbouncer=true&sslmode=disable") == (
        "postgresql://u@db/app?sslmode=disable",
        True,
    )
    assert pooler_dsn("postgresql://u@db/app?pgbouncer=false")[1] is False


def test_sqlite_is_refused_with_what_to_use_instead():
    for url in ("sqlite:////var/lib/bridge.db", "sqlite:///relative/bridge.db", "sqlite://"):
        with pytest.raises(ValueError, match="SQLite is no longer supported") as caught:
            open_storage(url)
        assert "postgresql://" in str(caught.value)
        assert "unset DATABASE_URL for the embedded PostgreSQL" in str(caught.value)
    with pytest.raises(ValueError, match="must start with postgresql://"):
        open_storage("mysql://db/app")


@pytest.fixture
def pgbouncer(pg_database: str) -> Iterator[str]:
    """A real PgBouncer in transaction pooling mode in front of the test database (2 server
    connections, so one client's statements land on different server sessions)."""
    binary = shutil.which("pgbouncer") or (
        "/usr/sbin/pgbouncer" if os.path.exists("/usr/sbin/pgbouncer") else None
    )
    if binary is None:
        pytest.fail("pgbouncer is missing: `make test` installs it (Debian package pgbouncer)")
    name = pg_database.rsplit("/", 1)[1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    folder.chmod(0o755)
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"""[databases]
{name} = host=127.0.0.1 port=5432 dbname={name} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
auth_type = trust
auth_file = {folder / "users.txt"}
pool_mode = transaction
default_pool_size = 2
unix_socket_dir =
logfile =
pidfile =
"""
    )
    for path in folder.iterdir():
        path.chmod(0o644)
    command = [binary, str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        command[1:1] = ["-u", "postgres"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read().decode())
            time.sleep(0.05)
        yield f"postgresql://postgres@127.0.0.1:{port}/{name}"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


async def hammer(client, count: int) -> list[int]:
    alerts = [
        # unrelated alerts (one name each): one incident, one page each
        payload(am_alert(f"Alert{i}", fingerprint=f"pg{i}", severity="critical"), group_key=f"g{i}")
        for i in range(count)
    ]
    responses = await asyncio.gather(
        *(client.post("/v1/alertmanager", data=body(a), headers=AUTH) for a in alerts * 2)
    )
    return [r.status for r in responses]


async def test_bridge_works_through_pgbouncer_transaction_pooling(pgbouncer, aiohttp_client):
    chans = notifiers("slack", "email", "pagerduty", "sms")
    config = make_config(f"{pgbouncer}?pgbouncer=true", deadman_after_seconds=60)
    app = create_app(config, notifiers=chans, workers=False)
    client = await aiohttp_client(app)
    bridge = app[BRIDGE]
    assert await bridge.storage.migrate() == []
    statuses = await hammer(client, 20)
    assert statuses == [200] * 40
    assert len(await alert_rows(bridge.storage)) == 20
    await bridge.router.refresh(bridge.storage, force=True)
    await bridge.maintenance_once()
    await bridge.delivery.run_once()
    assert len(chans["pagerduty"].messages) == 20
    assert len(chans["slack"].messages) == 20
    assert (await client.get("/-/ready")).status == 200


async def test_without_the_flag_pgbouncer_breaks_prepared_statements(pgbouncer, aiohttp_client):
    """The control: the same load with the statement cache on fails through the pooler, which
    is what the pgbouncer=true flag (or port 6543) exists for."""
    app = create_app(make_config(pgbouncer), notifiers=notifiers("slack"), workers=False)
    # One transaction per notification, many at once: coalesced, 40 notifications would share
    # two connections and rarely meet another client's prepared statement on a server connection.
    app[BRIDGE].ingestor.max_batch = 1
    app[BRIDGE].ingestor.max_inflight = 40
    client = await aiohttp_client(app)
    statuses = await hammer(client, 20)
    assert any(status >= 500 for status in statuses)


async def test_config_version_bumps_for_a_role_row_level_security_keeps_out(pg_database):
    """Like Supabase's `authenticated` role editing notification_preferences under a policy."""

    role = f"passiton_api_{os.getpid()}"
    conn = await asyncpg.connect(pg_database)
    try:
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.execute(f'CREATE ROLE "{role}"')
        # Supabase grants its API roles the tables; row level security decides the rows.
        await conn.execute(
            f'GRANT SELECT, INSERT, UPDATE ON notification_preferences, bridge_state TO "{role}"'
        )
        await conn.execute(
            f'CREATE POLICY api_all ON notification_preferences TO "{role}" USING (true)'
            " WITH CHECK (true)"
        )
        async with open_storage(pg_database) as storage:
            before = await storage.config_version()
            async with conn.transaction():
                await conn.execute(f'SET LOCAL ROLE "{role}"')
                await conn.execute(
                    "INSERT INTO notification_preferences (organization_id, min_severity)"
                    " VALUES ('org-9', 'high')"
                )
                assert await conn.fetch("SELECT * FROM bridge_state") == []  # hidden by RLS
            assert int(await storage.config_version()) == int(before) + 1
    finally:
        await conn.execute("DROP POLICY IF EXISTS api_all ON notification_preferences")
        await conn.execute(f'REVOKE ALL ON notification_preferences, bridge_state FROM "{role}"')
        await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
        await conn.close()
