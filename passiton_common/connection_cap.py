"""A cap on a listener's concurrent connections, and the file descriptors it is sized against.

A listener that accepts every connection lets one client holding idle sockets spend the
process's file descriptors: once ``accept()`` fails with ``EMFILE`` every listener of the
process stops answering, the internal one included (Prometheus then sees the service down).
``CappedSite`` is aiohttp's ``TCPSite`` with a ``ConnectionCap``: a connection past the cap is
closed as soon as it is accepted (before aiohttp sees it) and counted, so the listener never
holds more than ``limit`` descriptors. ``descriptor_budget`` checks ``RLIMIT_NOFILE`` at start-up
(raising the soft limit towards the hard one when it is too low) and lowers a cap that would not
leave ``reserve`` descriptors to the rest of the process.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from typing import Any

from aiohttp import web

from passiton_common.settings import ConfigError

log = logging.getLogger(__name__)

# descriptors kept for everything but the capped listener: the internal listener and its
# clients (Prometheus, the applications), log files, database and outbound connections
RESERVED_DESCRIPTORS = 256
# a cap the descriptor limit cannot afford below this is a configuration to refuse
MIN_CONNECTIONS = 16


class ConnectionCap:
    """Counts a listener's open connections; ``on_refused`` is called for each one closed at
    accept because ``limit`` were already open."""

    def __init__(self, limit: int, on_refused: Callable[[], None] = lambda: None) -> None:
        if limit < 1:
            raise ValueError("a connection cap is at least 1")
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._on_refused = on_refused

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for ``loop.create_server`` admitting at most ``limit`` at once."""
        return lambda: _Admission(self, inner)


class _Admission(asyncio.Protocol):
    """Decides at ``connection_made`` whether the connection is served, then hands every call
    to the real protocol (created only for an admitted connection)."""

    __slots__ = ("_cap", "_factory", "_inner")

    def __init__(self, cap: ConnectionCap, factory: Callable[[], asyncio.Protocol]) -> None:
        self._cap = cap
        self._factory = factory
        self._inner: asyncio.Protocol | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cap = self._cap
        if cap.open >= cap.limit:
            cap.refused += 1
            transport.abort()  # no answer, no lingering: the descriptor is released now
            cap._on_refused()
            return
        cap.open += 1
        self._inner = self._factory()
        self._inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is not None:
            self._cap.open -= 1
            self._inner.connection_lost(exc)
            self._inner = None

    def data_received(self, data: bytes) -> None:
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()


class CappedSite(web.TCPSite):
    """``web.TCPSite`` whose connections are admitted through ``cap``."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, cap: ConnectionCap,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(runner, host, port, **kwargs)
        self.cap = cap

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.cap.factory(server),
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port


def descriptor_budget(cap: int, reserve: int = RESERVED_DESCRIPTORS, *, what: str = "") -> int:
    """The connection cap this process can afford: ``cap`` when ``RLIMIT_NOFILE`` leaves
    ``reserve`` descriptors beside it (the soft limit is raised towards the hard limit first),
    else what the limit leaves, with a warning. Raises ``ConfigError`` when that is below
    ``MIN_CONNECTIONS`` (a process that could not serve its listeners)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = cap + reserve
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if raised > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
            except (ValueError, OSError):
                pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return cap
    affordable = soft - reserve
    if affordable < MIN_CONNECTIONS:
        raise ConfigError(
            f"RLIMIT_NOFILE is {soft} (hard {hard}): {what or 'the listener'} needs at least "
            f"{MIN_CONNECTIONS + reserve} descriptors ({reserve} kept for the rest of the process)"
        )
    log.warning(
        "connection cap lowered to fit the descriptor limit",
        extra={"listener": what, "configured": cap, "cap": affordable, "nofile": soft},
    )
    return affordable
