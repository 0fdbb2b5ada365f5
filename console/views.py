"""The console's application: its pages under ``/console/`` (see ``common.py`` for what they
share: sessions, CSRF, roles, audit), served by a host (``host.py``) as a sub-application."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import Counter

from bridge.oidc_config import OidcConfig
from bridge.oncall.working_hours import DEFAULT as WORKING_HOURS
from bridge.oncall.working_hours import WorkingHours, parse_working_hours
from bridge.storage import StorageUnavailable
from console.access import login, login_page, logout
from console.alerts import acknowledge, alert_page, retry, silence
from console.auth import (
    Sessions,
    console_secret,
)
from console.bulk import bulk_action
from console.common import (
    CONSOLE,
    PREFIX,
    Console,
    console_middleware,
    log,
)
from console.history import history_page
from console.host import ConsoleHost
from console.incident_work import (
    assign_incident,
    note_alert,
    note_incident,
    snooze_incident,
    unacknowledge_alert,
    unacknowledge_incident,
    unsnooze_incident,
)
from console.incidents import acknowledge_incident, incident_page, resolve_incident
from console.now import delete_view, now_page, save_view
from console.oidc import OidcClient
from console.oidc_views import oidc_callback, oidc_start
from console.oncall import add_override, oncall_page, remove_override
from console.push import (
    acknowledge as push_acknowledge,
)
from console.push import (
    device_page,
    manifest,
    service_worker,
    subscribe,
    unsubscribe,
)
from console.review import flapping_page, review_page
from console.settings import (
    save_preferences,
    save_threshold,
    save_user,
    settings_page,
    users_page,
)
from console.silences import (
    create_silence,
    edit_silence,
    edit_silence_page,
    expire_silence,
    new_silence_page,
    silences_page,
)
from passiton_common.http_client import async_client
from passiton_common.proxies import ClientAddress, parse_networks

LOGIN_FAILURE_REASONS = ("refused", "throttled", "busy", "oidc")


def create_console_app(
    host: ConsoleHost,
    *,
    secret: str,
    session_seconds: float,
    public_url: str = "",
    trusted_proxies: Iterable[str] = (),
    body_timeout_seconds: float = 10.0,
    working_hours: WorkingHours | None = None,
    oidc: OidcConfig | None = None,
) -> web.Application:
    """The console, for its host to mount with ``app.add_subapp("/console/", ...)`` (the
    prefix is ``PREFIX``: the pages' links and redirects carry it).

    ``secret`` signs the session cookies; empty means a random key kept in the host's
    database, shared by every replica and restart. ``public_url`` in https: the cookie is
    ``Secure`` (see ``common._finish``). A form's body must arrive within
    ``body_timeout_seconds`` (408); its size limit is the host application's. Behind the
    ``trusted_proxies``, the login throttle reads the client's address from X-Forwarded-For.
    ``oidc``: sign-in with that OpenID provider too (``oidc_views.py``)."""
    console = Console(
        host,
        secret=secret,
        session_seconds=session_seconds,
        public_url=public_url,
        body_timeout_seconds=body_timeout_seconds,
        clients=ClientAddress(parse_networks(trusted_proxies, "BRIDGE_CONSOLE_TRUSTED_PROXIES")),
        working_hours=working_hours or parse_working_hours(WORKING_HOURS),
        oidc=OidcClient(oidc) if oidc is not None else None,
    )
    console.login_failures = Counter(
        "passiton_console_login_failures",
        "Console logins refused: wrong user or password (refused), too many failures from the"
        " address or at the account (throttled), too many password checks waiting (busy), an"
        " OpenID sign-in refused at its way back (oidc).",
        ["reason"],
        registry=host.registry,
    )
    for reason in LOGIN_FAILURE_REASONS:
        console.login_failures.labels(reason=reason)
    app = web.Application(middlewares=[console_middleware])
    app[CONSOLE] = console
    r = app.router
    r.add_get("", _to_the_slash)  # /console -> /console/
    r.add_get("/", now_page)
    r.add_get("/login", login_page)
    r.add_post("/login", login)
    r.add_post("/logout", logout)
    r.add_post("/bulk", bulk_action)
    r.add_post("/views", save_view)
    r.add_post("/views/{id}/delete", delete_view)
    r.add_get("/oidc/start", oidc_start)
    r.add_get("/oidc/callback", oidc_callback)
    r.add_get("/incidents/{id}", incident_page)
    r.add_post("/incidents/{id}/acknowledge", acknowledge_incident)
    r.add_post("/incidents/{id}/resolve", resolve_incident)
    r.add_post("/incidents/{id}/unacknowledge", unacknowledge_incident)
    r.add_post("/incidents/{id}/snooze", snooze_incident)
    r.add_post("/incidents/{id}/unsnooze", unsnooze_incident)
    r.add_post("/incidents/{id}/assign", assign_incident)
    r.add_post("/incidents/{id}/notes", note_incident)
    r.add_get("/oncall", oncall_page)
    r.add_post("/oncall/overrides", add_override)
    r.add_post("/oncall/overrides/{id}/remove", remove_override)
    r.add_get("/alerts/{table}/{id}", alert_page)
    r.add_post("/alerts/{table}/{id}/acknowledge", acknowledge)
    r.add_post("/alerts/{table}/{id}/silence", silence)
    r.add_post("/alerts/{table}/{id}/unacknowledge", unacknowledge_alert)
    r.add_post("/alerts/{table}/{id}/notes", note_alert)
    r.add_post("/deliveries/{id}/retry", retry)
    r.add_get("/silences", silences_page)
    r.add_get("/silences/new", new_silence_page)
    r.add_post("/silences/new", create_silence)
    r.add_get("/silences/{id}/edit", edit_silence_page)
    r.add_post("/silences/{id}/edit", edit_silence)
    r.add_post("/silences/{id}/expire", expire_silence)
    r.add_get("/history", history_page)
    r.add_get("/review", review_page)
    r.add_get("/review/flapping", flapping_page)
    r.add_get("/settings", settings_page)
    r.add_post("/settings/preferences", save_preferences)
    r.add_post("/settings/thresholds", save_threshold)
    r.add_get("/users", users_page)
    r.add_post("/users", save_user)
    r.add_get("/manifest.webmanifest", manifest)
    r.add_get("/sw.js", service_worker)
    r.add_get("/device", device_page)
    r.add_post("/push/subscribe", subscribe)
    r.add_post("/push/unsubscribe", unsubscribe)
    r.add_post("/push/acknowledge", push_acknowledge)
    r.add_static("/static/", _static_dir(), append_version=True)

    async def lifecycle(_: web.Application):
        console.http = async_client()
        yield
        await console.http.aclose()
        console.work.close()

    async def keys(_: web.Application) -> None:
        # A sub-application starts after its host's own start-up (the database is open).
        try:
            key = await console_secret(host.storage, secret, host.now())
        except StorageUnavailable:
            # Started while the database is down: a process-local key until it is back.
            log.warning("console key not loaded from the database; sessions are per process")
            key = secrets.token_urlsafe(48)
        console.sessions = Sessions(key, session_seconds)

    app.cleanup_ctx.append(lifecycle)
    app.on_startup.append(keys)
    return app


async def _to_the_slash(_: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(f"{PREFIX}/")


def _static_dir() -> Path:
    return Path(__file__).parent / "static"
