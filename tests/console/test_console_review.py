"""The alert console's review page and its what-if counts."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from console.common import CONSOLE
from console.whatif import fires
from tests.bridge.support import T0
from tests.console.oncall_support import NOW
from tests.console.review_support import seed_review
from tests.console.support import PASSWORD_HASH, fire, first_alert_url, login, switch_user


async def test_review_counts_response_times_self_resolves_and_noise(console):
    console.clock.now = T0 + timedelta(days=2)
    for i in range(3):
        start = T0 + timedelta(hours=i)
        await fire(console, fingerprint="n1", starts_at=start, organization_id="org-noisy")
        await fire(
            console,
            fingerprint="n1",
            starts_at=start,
            organization_id="org-noisy",
            status="resolved",
            ends_at=start + timedelta(minutes=2),
        )
    await fire(console, name="SlowOne", fingerprint="q1", starts_at=T0, organization_id="org-q")
    url = await first_alert_url(console, "SlowOne")
    token = await login(console, "responder")
    console.clock.now = T0 + timedelta(minutes=6)
    await console.post(f"{url}/acknowledge", data={"csrf": token})
    console.clock.now = T0 + timedelta(days=2)
    review = await console.bridge.storage.console().review(
        T0 - timedelta(days=1), T0 + timedelta(days=2), 600, 50
    )
    rows = {r.alertname: r for r in review.rows}
    noisy = rows["PaymentFailureRateHigh"]
    assert (noisy.fired, noisy.refires, noisy.self_resolved) == (3, 2, 3)
    assert noisy.resolve_median == pytest.approx(120)
    assert rows["SlowOne"].ack_median == pytest.approx(360)
    assert review.noisiest[0] == ("org-noisy", 3)
    assert review.daily == [("2026-03-01", 4)]
    html = await (await console.get("/console/review?days=7")).text()
    assert "org-noisy" in html
    assert "6m00s" in html
    assert "<svg" in html
    assert (await console.get("/console/review?days=0")).status == 400
    whatif = await (
        await console.get(
            "/console/review?days=7&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=0.3"
        )
    ).text()
    assert "Prometheus unreachable" in whatif
    whatif = await (
        await console.get(
            "/console/review?days=7&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=7"
        )
    ).text()
    assert "must be within" in whatif


def test_what_if_counts_runs_that_last_the_for_duration():
    step = 60.0
    samples = [0, 60, 120, 180, 600, 660, 1200, 1260, 1320, 1380, 1440]
    assert fires([float(s) for s in samples], step, 120) == [120.0, 1320.0]
    assert fires([float(s) for s in samples], step, 0) == [0.0, 600.0, 1200.0]
    assert fires([], step, 60) == []


def _text(html: str, start: str, end: str) -> str:
    """The page between two markers, tags dropped, spaces collapsed."""
    part = html[html.index(start) : html.index(end, html.index(start))]
    return " ".join(re.sub(r"<[^>]+>", " ", unescape(part)).split())


async def test_flapping_acknowledgement_times_and_pages_outside_working_hours(oncall_console):
    client = oncall_console
    storage = client.bridge.storage
    await storage.console().upsert_user("b-only", PASSWORD_HASH, "viewer", NOW, ("org-b",))
    first, second = await seed_review(client)
    assert second != first

    html = await (await client.get("/console/review?days=7")).text()
    assert 'href="/console/review/flapping?days=7"' in html
    acks = _text(html, 'id="acks"', "</table>")
    assert "responder 1 20s 20s console" in acks
    assert "admin 1 5m00s 5m00s console" in acks
    hours = _text(html, 'id="offhours"', "</table>")
    assert "mon-fri 09:00-18:00" in hours
    assert "Alice Example alice 2 1 50% Europe/Berlin" in hours
    assert "Bob Example bob 1 1 100% America/New_York" in hours
    assert hours.index("Alice") < hours.index("Bob")

    flapping = await client.get("/console/review/flapping?days=7")
    rows = _text(await flapping.text(), "<tbody>", "</tbody>")
    assert "WidgetSlowLoads org-a" in rows
    assert "region=eu" in rows
    assert "org-a 3 4 " in rows  # resolved 3, fired 4
    assert "org-b" not in rows  # resolved once only
    two = _text(
        await (await client.get("/console/review/flapping?min=2")).text(), "<tbody>", "</tbody>"
    )
    assert "org-b" not in two
    assert (await client.get("/console/review/flapping?min=1")).status == 400
    assert (await client.get("/console/review/flapping?min=x")).status == 400

    # a user limited to org-b: org-b's alerts, incidents and pages only
    await switch_user(client, "b-only")
    html = await (await client.get("/console/review?days=7")).text()
    assert "your organizations: org-b" in html
    table = _text(html, '<table class="review">', "</table>")
    assert "org-b" in table
    assert "org-a" not in table
    acks = _text(html, 'id="acks"', "</table>")
    assert "admin 1" in acks
    assert "responder" not in acks
    hours = _text(html, 'id="offhours"', "</table>")
    assert "Alice Example alice 1 1 100% Europe/Berlin" in hours
    flapping = await client.get("/console/review/flapping?days=7&min=2")
    assert "WidgetSlowLoads" not in _text(await flapping.text(), "<tbody>", "</tbody>")


async def test_one_what_if_at_a_time(console, monkeypatch):
    """A what-if waits for the one running (each is up to 24 range queries), then gives up."""
    monkeypatch.setattr("console.review.WHATIF_WAIT_SECONDS", 0.05)
    await login(console, "viewer")
    url = "/console/review?days=7&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=0.3"
    [sub] = [
        r.get_info()["app"]
        for r in console.app.router.resources()
        if r.get_info().get("prefix") == "/console"
    ]
    gate = sub[CONSOLE].whatif_gate
    async with gate:
        busy = await (await console.get(url)).text()
    assert "another what-if is being evaluated; try again in a moment" in busy
    assert "Prometheus unreachable" in await (await console.get(url)).text()
