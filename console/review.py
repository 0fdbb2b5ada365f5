"""The review of noise and response times, with the what-if."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from console.common import (
    SELF_RESOLVE_SECONDS,
    _console,
    every_organization,
    render,
)
from console.forms import (
    TUNABLE,
)
from console.whatif import what_if


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


@every_organization
async def review_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        raise web.HTTPBadRequest(text="days must be a whole number") from None
    if not 1 <= days <= 366:
        raise web.HTTPBadRequest(text="days must be within 1..366")
    until = console.now()
    since = until - timedelta(days=days)
    review = await console.store.review(since, until, SELF_RESOLVE_SECONDS, 200)
    whatif = None
    if request.query.get("whatif_alert"):
        assert console.http is not None
        whatif = await what_if(
            console.http,
            console.host.prometheus_url,
            console.store,
            request.query.get("whatif_alert", ""),
            request.query.get("whatif_org", "").strip(),
            request.query.get("whatif_threshold", ""),
            since,
            until,
        )
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
    )
