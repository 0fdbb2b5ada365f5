"""The console as an installable web app, and Web Push to it.

- ``GET /console/manifest.webmanifest`` and ``GET /console/sw.js`` (the service worker, scope
  ``/console/``): public, like the static files, since browsers fetch them without the
  session.
- ``GET /console/device``: this device's notifications (Web Push on or off, the desktop alerts
  and sound of the Now page, the theme) and the user's subscribed browsers.
- ``POST /console/push/subscribe`` and ``/console/push/unsubscribe``: a browser's
  ``PushSubscription`` stored or removed for the signed-in user (CSRF as every form).
- ``POST /console/push/acknowledge``: the notification's "Acknowledge". Its authority is the
  signed, expiring, single-use token the page carried (``bridge.oncall.links``, the e-mail
  links' machinery), not a session: the phone's session may have expired, and the service
  worker posts without cookies. Answers JSON; the action is the person's, ``via`` push.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from bridge.channels.webpush_keys import b64url_decode
from bridge.oncall.actions import UnknownIncident
from bridge.oncall.link_actions import TokenUsed, act_once
from bridge.oncall.links import MAX_TOKEN_LENGTH
from bridge.storage import StorageUnavailable
from bridge.storage.push import MAX_ENDPOINT, PushSubscriptions, TooManySubscriptions
from console.common import PREFIX, _back, _console, _form, _problem, _row_id, _visitor, render

STATIC = Path(__file__).parent / "static"
MANIFEST = {
    "name": "PassItOn alerts",
    "short_name": "PassItOn",
    "description": "Incidents, alerts and on-call pages of PassItOn monitoring",
    "id": f"{PREFIX}/",
    "start_url": f"{PREFIX}/",
    "scope": f"{PREFIX}/",
    "display": "standalone",
    "background_color": "#f6f7f9",
    "theme_color": "#20252d",
    "icons": [
        {"src": f"{PREFIX}/static/icon-192.png", "sizes": "192x192", "type": "image/png"},
        {"src": f"{PREFIX}/static/icon-512.png", "sizes": "512x512", "type": "image/png"},
        {
            "src": f"{PREFIX}/static/icon-maskable-512.png",
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ],
}


async def manifest(_: web.Request) -> web.Response:
    return web.Response(
        text=json.dumps(MANIFEST, indent=1),
        content_type="application/manifest+json",
        headers={"Cache-Control": "max-age=3600"},
    )


async def service_worker(_: web.Request) -> web.Response:
    # served from /console/ (not /console/static/) so that its default scope is the console
    # (no Service-Worker-Allowed needed)
    return web.Response(
        text=(STATIC / "sw.js").read_text(encoding="utf-8"),
        content_type="text/javascript",
        headers={"Cache-Control": "no-cache"},
    )


def _store(request: web.Request) -> PushSubscriptions:
    return PushSubscriptions(_console(request).host.storage)


async def device_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    push = console.host.web_push()
    oncall = console.host.oncall()
    people = (
        [p.name for p in oncall.people.values() if p.contacts.push == user.username]
        if oncall is not None
        else []
    )
    return render(
        request,
        "device.html",
        push_key=push.public_key if push is not None else "",
        subscriptions=await _store(request).for_user(user.username),
        paged_as=people,
        oncall=oncall is not None,
    )


def _subscription_problem(endpoint: str, p256dh: str, auth: str) -> str:
    """What is wrong with a browser's subscription, "" when nothing is."""
    if not endpoint or len(endpoint) > MAX_ENDPOINT or any(c.isspace() for c in endpoint):
        return "endpoint: a push service URL is required"
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        return "endpoint: not a URL"
    # push services are https; anything else would let a user aim the bridge at internal URLs
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password:
        return "endpoint: must be an https URL of a push service"
    try:
        point = b64url_decode(p256dh)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
        if len(point) != 65:
            raise ValueError
    except ValueError:
        return "p256dh: must be the browser's P-256 public key (65 bytes, base64url)"
    try:
        if len(b64url_decode(auth)) != 16:
            raise ValueError
    except ValueError:
        return "auth: must be the subscription's 16-byte secret (base64url)"
    return ""


async def subscribe(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    if console.host.web_push() is None:
        return _problem(request, 409, "Web Push is not configured on this bridge.")
    form = await _form(request)
    endpoint = form.get("endpoint", "").strip()
    p256dh, auth = form.get("p256dh", "").strip(), form.get("auth", "").strip()
    problem = _subscription_problem(endpoint, p256dh, auth)
    if problem:
        return _problem(request, 400, problem)
    try:
        await _store(request).add(
            user.username,
            endpoint,
            p256dh,
            auth,
            request.headers.get("User-Agent", ""),
            console.now(),
        )
    except TooManySubscriptions:
        return _problem(request, 409, "Too many browsers subscribed; remove one first.")
    raise _back(f"{PREFIX}/device", "notifications are on for this device")


async def unsubscribe(request: web.Request) -> web.StreamResponse:
    user = _visitor(request).user
    assert user is not None
    form = await _form(request)
    endpoint = form.get("endpoint", "").strip()
    ident = _row_id(form["id"]) if form.get("id") else 0
    if not endpoint and not ident:
        return _problem(request, 400, "Name the subscription: endpoint or id.")
    removed = await _store(request).remove(user.username, endpoint=endpoint, id=ident)
    raise _back(f"{PREFIX}/device", "removed" if removed else "that browser was not subscribed")


def _answer(code: int, **body: object) -> web.Response:
    return web.json_response(body, status=code, headers={"Cache-Control": "no-store"})


async def acknowledge(request: web.Request) -> web.StreamResponse:
    """The notification's Acknowledge: the token is the authority (no session, no CSRF)."""
    console = _console(request)
    push = console.host.web_push()
    actions = console.host.incident_actions()
    oncall = console.host.oncall()
    form = await request.post()
    token = form.get("token", "")
    link = (
        push.tokens.verify(token)
        if push is not None and isinstance(token, str) and len(token) <= MAX_TOKEN_LENGTH
        else None
    )
    if link is None or actions is None or oncall is None or link.person_id not in oncall.people:
        return _answer(404, error="invalid or expired; open the incident in the console")
    try:
        result = await act_once(
            console.host.storage, actions, link, "acknowledge", via="push", now=console.now()
        )
    except TokenUsed:
        return _answer(409, error="this notification acted once already")
    except UnknownIncident:
        return _answer(404, error="invalid or expired; open the incident in the console")
    except StorageUnavailable:
        return _answer(503, error="the alert database is unavailable; try again")
    return _answer(
        200,
        incident=result.incident_id,
        status=result.status,
        changed=result.changed,
        title=result.title,
    )
