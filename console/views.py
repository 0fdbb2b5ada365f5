"""Mounts the console's pages under ``/console/`` of the bridge's application (see
``common.py`` for what they share: sessions, CSRF, roles, audit)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

from bridge.storage import StorageUnavailable
from console.access import login, login_page, logout
from console.alerts import acknowledge, alert_page, now_page, retry, silence
from console.auth import (
    Sessions,
    console_secret,
)
from console.common import (
    CONSOLE,
    PREFIX,
    Console,
    console_middleware,
    log,
)
from console.history import history_page
from console.review import review_page
from console.settings import (
    save_preferences,
    save_threshold,
    save_user,
    settings_page,
    users_page,
)


def add_console(app: web.Application, bridge: Any, *, secret: str, session_seconds: float) -> None:
    """Mount the console under /console/ on the bridge's application."""
    console = Console(bridge, secret=secret, session_seconds=session_seconds)
    app[CONSOLE] = console
    app.middlewares.append(console_middleware)
    r = app.router
    r.add_get(PREFIX, lambda _: web.HTTPFound(f"{PREFIX}/"))
    r.add_get(f"{PREFIX}/", now_page)
    r.add_get(f"{PREFIX}/login", login_page)
    r.add_post(f"{PREFIX}/login", login)
    r.add_post(f"{PREFIX}/logout", logout)
    r.add_get(f"{PREFIX}/alerts/{{table}}/{{id}}", alert_page)
    r.add_post(f"{PREFIX}/alerts/{{table}}/{{id}}/acknowledge", acknowledge)
    r.add_post(f"{PREFIX}/alerts/{{table}}/{{id}}/silence", silence)
    r.add_post(f"{PREFIX}/deliveries/{{id}}/retry", retry)
    r.add_get(f"{PREFIX}/history", history_page)
    r.add_get(f"{PREFIX}/review", review_page)
    r.add_get(f"{PREFIX}/settings", settings_page)
    r.add_post(f"{PREFIX}/settings/preferences", save_preferences)
    r.add_post(f"{PREFIX}/settings/thresholds", save_threshold)
    r.add_get(f"{PREFIX}/users", users_page)
    r.add_post(f"{PREFIX}/users", save_user)
    r.add_static(f"{PREFIX}/static/", _static_dir(), append_version=True)

    async def lifecycle(_: web.Application):
        console.http = httpx.AsyncClient()
        yield
        await console.http.aclose()

    async def keys(_: web.Application) -> None:
        try:
            key = await console_secret(bridge.storage, secret, bridge.clock())
        except StorageUnavailable:
            # Started while the database is down: a process-local key until it is back.
            log.warning("console key not loaded from the database; sessions are per process")
            key = secrets.token_urlsafe(48)
        console.sessions = Sessions(key, session_seconds)

    app.cleanup_ctx.append(lifecycle)
    app.on_startup.append(keys)


def _static_dir() -> Path:
    return Path(__file__).parent / "static"
