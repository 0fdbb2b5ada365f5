"""The alert console's review page and its what-if counts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from console.whatif import fires
from tests.bridge.support import T0
from tests.console.support import fire, first_alert_url, login


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
