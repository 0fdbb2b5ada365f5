"""The connection cap both public listeners use (``passiton_common.connection_cap``), on real
sockets: past the cap a connection is closed at accept and counted, the admitted ones are served,
a freed place is taken again; the descriptor limit lowers (or refuses) a cap it cannot afford."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest
from aiohttp import ClientSession, web

from bridge.config import BridgeConfig
from passiton_common.connection_cap import CappedSite, ConnectionCap

CAP = 5


async def _healthy(_: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def _closed_by_peer(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(1), 5) == b""
    except ConnectionResetError:
        return True


async def test_connections_past_the_cap_are_closed_at_accept_and_counted() -> None:
    refused: list[int] = []
    cap = ConnectionCap(CAP, lambda: refused.append(1))
    app = web.Application()
    app.router.add_get("/-/healthy", _healthy)
    runner = web.AppRunner(app, keepalive_timeout=60)
    await runner.setup()
    site = CappedSite(runner, "127.0.0.1", 0, cap=cap)
    await site.start()
    port = runner.addresses[0][1]
    idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(CAP)]
    try:
        while cap.open < CAP:  # the accepts are handled by this loop
            await asyncio.sleep(0.01)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        assert await _closed_by_peer(reader)
        writer.close()
        assert (cap.refused, len(refused), cap.open) == (1, 1, CAP)
        # an admitted connection is served as usual
        idle_reader, idle_writer = idle[0]
        idle_writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await idle_reader.readline()).startswith(b"HTTP/1.1 200")
        # a place freed is taken by the next client
        idle_writer.close()
        while cap.open >= CAP:
            await asyncio.sleep(0.01)
        async with (
            ClientSession() as session,
            session.get(f"http://127.0.0.1:{port}/-/healthy") as answer,
        ):
            assert answer.status == 200
        assert cap.refused == 1
    finally:
        for _, writer in idle:
            writer.close()
        await runner.cleanup()


_BUDGET = textwrap.dedent(
    """
    import resource, sys
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[1]), int(sys.argv[1])))
    from passiton_common.connection_cap import descriptor_budget
    from passiton_common.settings import ConfigError
    try:
        print(descriptor_budget(int(sys.argv[2]), 256))
    except ConfigError as exc:
        print("refused:", exc)
    """
)


@pytest.mark.parametrize(
    ("nofile", "configured", "expected"),
    [(4096, 1000, "1000"), (600, 1000, "344"), (600, 300, "300"), (260, 1000, "refused:")],
)
def test_the_cap_is_fitted_to_the_descriptor_limit(nofile: int, configured: int, expected: str):
    out = subprocess.run(
        [sys.executable, "-c", _BUDGET, str(nofile), str(configured)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.startswith(expected), out


def test_the_soft_limit_is_raised_towards_the_hard_one() -> None:
    script = (
        _BUDGET.replace("(int(sys.argv[1]), int(sys.argv[1]))", "(int(sys.argv[1]), 8192)")
        + "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, "512", "2000"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["2000", "2256"]


def test_the_bridge_reads_its_public_cap() -> None:
    env = {"BRIDGE_WEBHOOK_TOKEN": "x" * 32, "BRIDGE_PUBLIC_MAX_CONNECTIONS": "64"}
    assert BridgeConfig.from_env(env).public_max_connections == 64
    assert BridgeConfig.from_env({"BRIDGE_WEBHOOK_TOKEN": "x" * 32}).public_max_connections == 500
