"""The e-mail pages' links (``/v1/ack/{token}``): GET shows the incident and two buttons, POST
acts once. A link scanner that fetches the link changes nothing; a second POST of the same link
(or a replay) finds its nonce used and changes nothing; an expired or forged token is a 404
that says no more than "invalid or expired"."""

from __future__ import annotations

from html import escape

from aiohttp import web

from bridge.oncall.actions import Action, UnknownIncident
from bridge.oncall.link_actions import TokenUsed, act_once
from bridge.public.context import CONTEXT
from bridge.storage import StorageUnavailable

_ACTIONS: dict[str, Action] = {"acknowledge": "acknowledge", "resolve": "resolve"}
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",  # the token is in the URL
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
_STYLE = (
    "body{font:16px/1.4 system-ui,sans-serif;margin:2rem auto;max-width:32rem;padding:0 1rem}"
    "button{font:inherit;padding:.6rem 1.2rem;margin:.3rem .6rem .3rem 0;cursor:pointer}"
    ".status{color:#555}"
)


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(status=status, text=html, content_type="text/html", headers=HEADERS)


def _invalid() -> web.Response:
    return _page("Link invalid or expired", "<p>Open the console to work the incident.</p>", 404)


async def show(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    link = context.links.verify(request.match_info["token"]) if context.links else None
    if link is None:
        context.count("ack_link", "unauthorized")
        return _invalid()
    try:
        async with context.storage.transaction() as tx:
            incident = await tx.incident_summary(link.incident_id)
    except StorageUnavailable:
        context.count("ack_link", "unavailable")
        return _page("Try again shortly", "<p>The monitoring database cannot be reached.</p>", 503)
    if incident is None or link.person_id not in context.oncall.people:
        context.count("ack_link", "forbidden")
        return _invalid()
    context.count("ack_link", "accepted")
    buttons = "".join(
        f'<button name=action value="{name}">{name.capitalize()}</button>'
        for name in _ACTIONS
        if incident.status != "resolved"
    )
    body = (
        f"<p>{escape(incident.title)}</p>"
        f"<p class=status>Severity {escape(incident.severity)}, {escape(incident.status)}.</p>"
        f"<form method=post>{buttons}</form>"
    )
    return _page(f"Incident #{incident.id}", body)


async def act(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    link = context.links.verify(request.match_info["token"]) if context.links else None
    if link is None:
        context.count("ack_link", "unauthorized")
        return _invalid()
    if link.person_id not in context.oncall.people:
        context.count("ack_link", "forbidden")
        return _invalid()
    form = await request.post()
    action = _ACTIONS.get(str(form.get("action", "")))
    if action is None:
        context.count("ack_link", "invalid")
        return _page("Choose an action", "<p>Acknowledge or resolve.</p>", 400)
    try:
        result = await act_once(
            context.storage, context.actions, link, action, via="email", now=context.clock()
        )
    except TokenUsed:
        context.count("ack_link", "replay")
        return _page("Link already used", "<p>This link has acted once already.</p>", 409)
    except UnknownIncident:
        context.count("ack_link", "forbidden")
        return _invalid()
    except StorageUnavailable:
        context.count("ack_link", "unavailable")
        return _page("Try again shortly", "<p>The monitoring database cannot be reached.</p>", 503)
    context.count("ack_link", "accepted")
    done = "acknowledged" if action == "acknowledge" else "resolved"
    text = (
        f"Incident #{result.incident_id} {done}."
        if result.changed
        else (f"Incident #{result.incident_id} was already {result.status}.")
    )
    return _page(text, f"<p>{escape(result.title)}</p>")
