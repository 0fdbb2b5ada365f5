"""The alert console's history: filters, search, keyset pages, CSV export."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest

from bridge.storage.console import Cursor
from tests.bridge.support import T0
from tests.console.support import fire, login


async def test_history_filters_search_keyset_pages_and_csv(console, monkeypatch):
    monkeypatch.setattr("console.history.PAGE_SIZE", 3)
    # equal start times across two tables, so the keyset's tie-breaks are exercised
    for i in range(4):
        await fire(console, fingerprint=f"p{i}", organization_id=f"org-{i % 2}")
        await fire(
            console,
            name="WidgetSlowLoads",
            fingerprint=f"w{i}",
            category="widget",
            severity="medium",
            organization_id="org-w",
            starts_at=T0 - timedelta(minutes=i),
            annotations={"summary": f'=HYPERLINK("x") slow widget {i}'},
        )
    await login(console, "viewer")
    seen: list[str] = []
    url = "/console/history"
    pages = 0
    while url:
        html = await (await console.get(url)).text()
        pages += 1
        seen += html.split('data-href="')[1:]
        marker = 'rel="next"'
        if marker not in html:
            break
        href = html[: html.index(marker)].rsplit('href="', 1)[1].split('"')[0]
        url = "/console/history" + href.replace("&amp;", "&")
    assert pages == 3
    assert len(seen) == 8
    assert len({s.split('"')[0] for s in seen}) == 8  # no row twice, none lost
    html = await (await console.get("/console/history?category=widget&severity=medium")).text()
    assert html.count('data-href="') == 3
    assert "PaymentFailureRateHigh" not in html
    html = await (await console.get("/console/history?q=slow+widget+2")).text()
    assert html.count('data-href="') == 1
    html = await (
        await console.get("/console/history?q=100%25")
    ).text()  # LIKE wildcards are literal
    assert html.count('data-href="') == 0
    html = await (await console.get("/console/history?org=org-1&status=firing")).text()
    assert html.count('data-href="') == 2
    since = (T0 - timedelta(minutes=1, seconds=30)).isoformat()
    html = await (
        await console.get("/console/history", params={"since": since, "category": "widget"})
    ).text()
    assert html.count('data-href="') == 2
    for bad in ("severity=urgent", "category=nope", "since=yesterday", "after=garbage", "status=x"):
        assert (await console.get(f"/console/history?{bad}")).status == 400, bad
    export = await console.get("/console/history?format=csv")
    assert export.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(await export.text())))
    assert rows[0][:3] == ["starts_at", "ends_at", "status"]
    assert len(rows) == 9
    summaries = [r[7] for r in rows[1:] if r[5] == "WidgetSlowLoads"]
    assert all(s.startswith("'=HYPERLINK") for s in summaries)  # no formula injection


def test_cursor_round_trip_and_refusals():
    cursor = Cursor(T0, "widget_alerts", 42)
    assert Cursor.decode(cursor.encode()) == cursor
    for bad in ("", "!!!", Cursor(T0, "pg_authid", 1).encode(), "eHx5fHo"):
        with pytest.raises(ValueError):
            Cursor.decode(bad)
