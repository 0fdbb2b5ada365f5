"""The review of noise and response times: fires per alert and organization, the what-if, the
flapping label sets, acknowledgement times per person and the pages each person got outside
working hours. A user limited to some organizations sees their organizations' numbers only
(their alerts; the incidents touching their organizations; a what-if of theirs)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from aiohttp import web

from bridge.oncall.working_hours import WorkingHours
from bridge.storage.console import ConsoleUser
from bridge.storage.console_review import PageToPerson, ReviewStore
from console.common import (
    SELF_RESOLVE_SECONDS,
    _console,
    _problem,
    _visitor,
    render,
)
from console.forms import TUNABLE
from console.whatif import WhatIf, what_if

UTC_ZONE = ZoneInfo("UTC")
MAX_PAGES = 100_000  # escalation steps read for one review
FLAPPING_LIMIT = 200
WHATIF_WAIT_SECONDS = 30.0  # for the what-if another viewer is running


def _bars(points: list[tuple[str, int]], width: int = 360, height: int = 120) -> dict[str, Any]:
    """Geometry of a simple bar chart, drawn as inline SVG by the template."""
    top = max((v for _, v in points), default=0) or 1
    step = width / max(len(points), 1)
    bars = [
        {
            "x": round(i * step, 1),
            "w": round(min(max(step - 2, 1), 48), 1),
            "h": round(v / top * (height - 14), 1),
            "y": round(height - v / top * (height - 14), 1),
            "label": label,
            "value": v,
        }
        for i, (label, v) in enumerate(points)
    ]
    return {"bars": bars, "width": width, "height": height, "top": top}


def _user(request: web.Request) -> ConsoleUser:
    user = _visitor(request).user
    assert user is not None  # the middleware lets only signed-in users here
    return user


def _days(request: web.Request) -> int:
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        raise web.HTTPBadRequest(text="days must be a whole number") from None
    if not 1 <= days <= 366:
        raise web.HTTPBadRequest(text="days must be within 1..366")
    return days


@dataclass(frozen=True)
class OffHours:
    """One person's pages in the period and how many fell outside working hours."""

    person: str
    name: str
    zone: str  # the clock they were judged on
    pages: int
    outside: int
    known: bool  # in the on-call file (else judged in UTC)

    @property
    def share(self) -> float:
        return self.outside / self.pages if self.pages else 0.0


def off_hours(
    pages: list[PageToPerson], people: dict[str, tuple[str, ZoneInfo]], hours: WorkingHours
) -> list[OffHours]:
    """Per person (most pages outside first): pages, and those outside ``hours`` on the
    person's clock (``people``: id -> (name, zone) from the on-call file; UTC otherwise)."""
    counts: dict[str, list[int]] = {}
    for page in pages:
        _, zone = people.get(page.person_id, ("", UTC_ZONE))
        tally = counts.setdefault(page.person_id, [0, 0])
        tally[0] += 1
        tally[1] += 0 if hours.contains(page.at, zone) else 1
    out = []
    for person, (total, outside) in counts.items():
        name, zone = people.get(person, (person, UTC_ZONE))
        out.append(OffHours(person, name, zone.key, total, outside, person in people))
    return sorted(out, key=lambda r: (-r.outside, -r.pages, r.person))


async def review_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _user(request)
    days = _days(request)
    until = console.now()
    since = until - timedelta(days=days)
    scope = user.organizations
    store = cast(ReviewStore, console.store)
    review = await store.review(since, until, SELF_RESOLVE_SECONDS, 200, within=scope)
    acks = await store.acknowledgement_times(since, until, within=scope)
    pages = await store.pages_to_people(since, until, MAX_PAGES, within=scope)
    oncall = console.host.oncall()
    people = {p.id: (p.name, p.time_zone) for p in (oncall.people.values() if oncall else ())}
    whatif = None
    if request.query.get("whatif_alert"):
        org = request.query.get("whatif_org", "").strip()
        if org and not user.sees(org):
            return _problem(request, 403, f"Organization {org!r} is not one of yours.")
        whatif = await _what_if(request, org, since, until)
    return render(
        request,
        "review.html",
        review=review,
        days=days,
        since=since,
        until=until,
        daily=_bars(review.daily),
        noisiest=_bars(review.noisiest),
        self_resolve=SELF_RESOLVE_SECONDS,
        tunable=TUNABLE,
        whatif=whatif,
        acks=acks,
        off_hours=off_hours(pages, people, console.working_hours),
        pages_truncated=len(pages) >= MAX_PAGES,
        working_hours=console.working_hours.describe(),
        oncall_configured=oncall is not None,
        scope=scope,
    )


async def _what_if(request: web.Request, org: str, since: datetime, until: datetime) -> WhatIf:
    """One what-if at a time per process (each is up to MAX_CHUNKS range queries)."""
    console = _console(request)
    alertname = request.query.get("whatif_alert", "")
    try:
        async with asyncio.timeout(WHATIF_WAIT_SECONDS):
            await console.whatif_gate.acquire()
    except TimeoutError:
        busy = WhatIf(alertname, org)
        busy.error = "another what-if is being evaluated; try again in a moment"
        return busy
    try:
        assert console.http is not None
        return await what_if(
            console.http,
            console.host.prometheus_url,
            console.store,
            alertname,
            org,
            request.query.get("whatif_threshold", ""),
            since,
            until,
            within=_user(request).organizations,
        )
    finally:
        console.whatif_gate.release()


async def flapping_page(request: web.Request) -> web.StreamResponse:
    """Label sets that fired and resolved at least ``min`` times in the period."""
    console = _console(request)
    days = _days(request)
    try:
        at_least = int(request.query.get("min", "3"))
    except ValueError:
        raise web.HTTPBadRequest(text="min must be a whole number") from None
    if not 2 <= at_least <= 1000:
        raise web.HTTPBadRequest(text="min must be within 2..1000")
    until = console.now()
    since = until - timedelta(days=days)
    store = cast(ReviewStore, console.store)
    rows = await store.flapping(
        since, until, at_least, FLAPPING_LIMIT, within=_user(request).organizations
    )
    return render(
        request,
        "flapping.html",
        rows=rows,
        days=days,
        at_least=at_least,
        since=since,
        until=until,
        limit=FLAPPING_LIMIT,
    )
