"""On-call shifts as iCalendar feeds (``GET /v1/oncall/{kind}/{id}.ics?token=…``), for people's
calendar apps, which fetch from the internet: a schedule's or a person's shifts from a week ago to
two months ahead, overrides included. The token (``bridge.oncall.calendar.calendar_token``) is the
only key; a wrong one, an unknown id and an unknown kind all answer the same 404."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bridge.oncall.calendar import (
    CALENDAR_KINDS,
    check_calendar_token,
    person_calendar,
    schedule_calendar,
)
from bridge.public.context import CONTEXT
from bridge.storage import StorageUnavailable

PAST = timedelta(days=7)
AHEAD = timedelta(days=62)


def _not_found() -> web.Response:
    return web.Response(status=404, text="no such calendar\n")


async def feed(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    kind = request.match_info["kind"]
    ident = request.match_info["ident"]
    token = request.query.get("token", "")
    known = context.oncall.schedules if kind == "schedule" else context.oncall.people
    if (
        kind not in CALENDAR_KINDS
        or not context.calendar_secret
        or len(token) > 100
        or not check_calendar_token(context.calendar_secret, kind, ident, token)
        or ident not in known
    ):
        context.count("calendar", "unauthorized")
        return _not_found()
    now = context.clock()
    start, end = now - PAST, now + AHEAD
    try:
        overrides = await context.storage.overrides(start, end)
    except StorageUnavailable:
        overrides = []  # the rotations alone beat no calendar; the next fetch has them
    render = schedule_calendar if kind == "schedule" else person_calendar
    body = render(context.oncall, ident, start, end, overrides, now=now)
    context.count("calendar", "accepted")
    return web.Response(
        body=body,
        content_type="text/calendar",
        charset="utf-8",
        headers={"Cache-Control": "private, max-age=300", "Referrer-Policy": "no-referrer"},
    )
