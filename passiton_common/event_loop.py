"""The services' event loop: uvloop (libuv under asyncio's interface, the loop uvicorn and Sanic
run on) where it is installed, else asyncio's own.

Both services run on it: an aiohttp request costs about 6 % less CPU on uvloop
(``benchmarks/exporter_ingest.py``). Nothing in either service depends on which loop it is;
``name()`` says which one runs, for the start-up log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # pragma: no cover - a platform without uvloop's wheels (Windows)
    uvloop = None  # type: ignore[assignment]

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new loop of the services' kind (for ``aiohttp.web.run_app(loop=…)``)."""
    if uvloop is not None:
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on a loop of the services' kind."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)


def name(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """``uvloop`` or ``asyncio``: the running loop's kind (or ``loop``'s)."""
    loop = loop or asyncio.get_running_loop()
    return "uvloop" if uvloop is not None and isinstance(loop, uvloop.Loop) else "asyncio"
