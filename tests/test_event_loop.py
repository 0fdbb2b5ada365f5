"""The services' event loop (passiton_common/event_loop.py)."""

from __future__ import annotations

import asyncio

import uvloop

from passiton_common import event_loop


async def _kind() -> tuple[str, type]:
    await asyncio.sleep(0)
    return event_loop.name(), type(asyncio.get_running_loop())


def test_run_runs_on_uvloop_and_returns_the_result() -> None:
    name, kind = event_loop.run(_kind())
    assert name == "uvloop"
    assert issubclass(kind, uvloop.Loop)


def test_new_event_loop_is_uvloop_and_asyncio_s_own_is_named_so() -> None:
    loop = event_loop.new_event_loop()
    try:
        assert isinstance(loop, uvloop.Loop)
        assert event_loop.name(loop) == "uvloop"
    finally:
        loop.close()
    plain = asyncio.new_event_loop()
    try:
        assert event_loop.name(plain) == "asyncio"
    finally:
        plain.close()
