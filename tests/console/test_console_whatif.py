"""The what-if against a real Prometheus holding 30 days of backfilled history and the
repository's payment rules: at the default 30 days it replays the rule at its own 15 s
interval (a 260 s step used to miss a 300 s ``for``), in range queries of at most 11,000
points, and a ``for`` or a ``keep_firing_for`` straddling two queries still counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from console.upstream import prometheus_range
from console.whatif import WhatIf, fires, what_if
from console.whatif_eval import MAX_CHUNKS, MAX_POINTS_PER_QUERY, plan
from passiton_common.http_client import async_client
from tests.console.browser_support import chromium, log_in, new_screen
from tests.console.oncall_support import NOW, oncall_console
from tests.console.prometheus_support import ROOT, backfilled_prometheus, openmetrics
from tests.console.review_support import seed_review
from tests.console.support import PASSWORD_HASH, fire, login, switch_user

UNTIL = NOW  # the on-call console's clock
SINCE = UNTIL - timedelta(days=30)
# the replay's grid at the rules' 15 s interval: the boundaries between its range queries
GRID = plan(SINCE.timestamp(), UNTIL.timestamp(), 15, 300)
FIRST_BOUNDARY = GRID.at(MAX_POINTS_PER_QUERY)
SECOND_BOUNDARY = GRID.at(2 * MAX_POINTS_PER_QUERY)
# org-a: payments timing out for 6 minutes across the first boundary (PaymentTimeoutsHigh, for 5m)
TIMEOUTS = [(FIRST_BOUNDARY - 180, FIRST_BOUNDARY + 180)]
# org-b: failing for 7 minutes, 3 minutes of quiet across the second boundary, 7 minutes more
# (PaymentFailureRatioHigh keeps firing for 10m: one firing), then again an hour later (two)
FAILURES = [
    (SECOND_BOUNDARY - 540, SECOND_BOUNDARY - 120),
    (SECOND_BOUNDARY + 60, SECOND_BOUNDARY + 480),
    (SECOND_BOUNDARY + 3600, SECOND_BOUNDARY + 4020),
]


def _during(runs: list[tuple[float, float]], high: float, low: float):
    return lambda t: high if any(a <= t < b for a, b in runs) else low


def _history() -> str:
    """Every 4 minutes over the period (and the warm-up before it), every 15 s around the
    runs, so each value changes exactly where a run starts and ends."""
    start, end = int(SINCE.timestamp()) - 600, int(UNTIL.timestamp())
    times = set(range(start, end, 240))
    for a, b in [*TIMEOUTS, *FAILURES]:
        times.update(range(int(a) - 600, int(b) + 600, 15))
    stamps = sorted(float(t) for t in times if start <= t < end)
    timeouts = _during(TIMEOUTS, 0.5, 0.002)
    failures = _during(FAILURES, 0.6, 0.01)
    series = []
    for org, timeout, failure in (
        ("org-a", timeouts, lambda t: 0.01),
        ("org-b", lambda t: 0.002, failures),
    ):
        series += [
            ("organization:passiton_payment_attempts:rate5m", org, lambda t: 1.0),
            ("organization:passiton_payment_timeouts:rate5m", org, timeout),
            ("organization:passiton_payment_timeout_ratio:rate5m", org, timeout),
            ("organization:passiton_payment_timeout_ratio:threshold", org, lambda t: 0.05),
            ("organization:passiton_payment_failures:rate5m", org, failure),
            ("organization:passiton_payment_failure_ratio:rate5m", org, failure),
            ("organization:passiton_payment_failure_ratio:threshold", org, lambda t: 0.2),
        ]
    return openmetrics(series, stamps)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory) -> Iterator[str]:
    work: Path = tmp_path_factory.mktemp("whatif-prometheus")
    with backfilled_prometheus(work, _history(), [ROOT / "prometheus/rules/payment.yml"]) as url:
        yield url


@pytest.fixture
async def console(db_url, aiohttp_client, console_alertmanager, prometheus, tmp_path):
    client = await oncall_console(
        db_url, aiohttp_client, tmp_path, console_alertmanager, prometheus_url=prometheus
    )
    await client.bridge.storage.console().upsert_user(
        "b-only", PASSWORD_HASH, "viewer", UNTIL, ("org-b",)
    )
    return client


async def test_thirty_days_at_the_rules_own_interval(console):
    # the alert fired once, as the rule's 5 minutes ended (Prometheus sends FiredAt)
    fired_at = FIRST_BOUNDARY - 180 + 300
    await fire(
        console,
        name="PaymentTimeoutsHigh",
        fingerprint="a-timeouts",
        organization_id="org-a",
        starts_at=UNTIL - timedelta(seconds=UNTIL.timestamp() - fired_at),
    )
    await login(console, "viewer")
    html = await (
        await console.get(
            "/console/review?days=30&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=0.1"
        )
    ).text()
    answer = re.search(r'<p class="whatif-answer">(.*?)</p>', html, re.S)
    assert answer, html[-3000:]
    text = re.sub(r"<[^>]+>", "", answer.group(1))
    assert "would have fired 1 time(s) in the last 30 days; it actually fired 1 time(s)" in text
    assert "every 15s (the rule's evaluation interval)" in html
    assert "172821 evaluations in 16 range queries" in html

    async with async_client() as http:
        result, failures = await _direct(console, http)
        # what the what-if did before: one query at a 260 s step (30 days / 10,000 points),
        # on which the 6-minute run is two samples, 260 s apart: "would have fired 0"
        old = await prometheus_range(
            http, console.bridge.config.prometheus_url, result.expression,
            SINCE.timestamp(), UNTIL.timestamp(), 260, 2**25,
        )  # fmt: skip
        assert [len(fires([float(t) for t, _ in s["values"]], 260, 300)) for s in old] == [0]
        # an organization is a PromQL string, whatever it holds
        odd = await what_if(
            http, console.bridge.config.prometheus_url, console.bridge.storage.console(),
            "PaymentTimeoutsHigh", 'org-a"}) or vector(1) or ({x="', "0.1",
            UNTIL - timedelta(days=1), UNTIL,
        )  # fmt: skip
        assert (odd.error, odd.fired, odd.queries) == ("", 0, 1)
    assert result.error == ""
    assert (result.step_seconds, result.for_seconds, result.coarse) == (15, 300, False)
    assert (result.queries, result.fired, result.actually_fired) == (16, 1, 1)
    [(when, org)] = result.would_fire
    assert (when.timestamp(), org) == (fired_at, "org-a")
    # keep_firing_for across the second boundary: three runs, two firings
    assert (failures.keep_firing_seconds, failures.step_seconds) == (600, 15)
    assert [w.timestamp() for w, _ in failures.would_fire] == [
        FAILURES[0][0] + 300,
        FAILURES[2][0] + 300,
    ]

    # a user limited to org-b: the what-if is of org-b only, another organization's refused
    await switch_user(console, "b-only")
    mine = await (
        await console.get(
            "/console/review?days=3&whatif_alert=PaymentTimeoutsHigh&whatif_threshold=0.1"
        )
    ).text()
    assert re.search(r"would have fired <b>0</b>.*actually fired <b>0</b>", mine, re.S)
    assert '"organization_id", "org-b"' in mine.replace("&#34;", '"')
    other = await console.get(
        "/console/review?days=30&whatif_alert=PaymentTimeoutsHigh&whatif_org=org-a"
        "&whatif_threshold=0.1"
    )
    assert other.status == 403


async def _direct(console, http: httpx.AsyncClient) -> tuple[WhatIf, WhatIf]:
    prometheus = console.bridge.config.prometheus_url
    store = console.bridge.storage.console()
    timeouts = await what_if(
        http, prometheus, store, "PaymentTimeoutsHigh", "", "0.1", SINCE, UNTIL
    )
    failures = await what_if(
        http, prometheus, store, "PaymentFailureRatioHigh", "org-b", "0.3", SINCE, UNTIL
    )
    return timeouts, failures


def test_the_work_is_bounded():
    assert MAX_CHUNKS * MAX_POINTS_PER_QUERY == 264_000
    # a year of a 5-minute rule: a step of 120 s (≤ for/2), the bound's 24 queries
    year = plan(0, 366 * 86400, 15, 300)
    assert (year.step, year.coarse, year.chunk_count) == (120, True, 24)
    assert year.count <= MAX_CHUNKS * MAX_POINTS_PER_QUERY


async def test_the_review_page_in_chromium(console, shots):
    """The review with a what-if of the backfilled month, the acknowledgement times and the
    pages outside working hours, then the flapping list, on a desktop and a phone."""
    await fire(
        console,
        name="PaymentTimeoutsHigh",
        fingerprint="a-timeouts",
        organization_id="org-a",
        starts_at=datetime.fromtimestamp(FIRST_BOUNDARY + 120, UTC),
    )
    await seed_review(console)
    base = str(console.make_url("")).rstrip("/")
    whatif = "whatif_alert=PaymentTimeoutsHigh&whatif_threshold=0.1"
    async with chromium() as browser:
        for name in ("desktop", "phone"):
            page = await (await new_screen(browser, name)).new_page()
            await log_in(page, base, "admin")
            await page.goto(f"{base}/console/review?days=30&{whatif}")
            answer = page.locator(".whatif-answer")
            await expect(answer).to_contain_text("would have fired 1 time(s)")
            await expect(answer).to_contain_text("actually fired 1 time(s)")
            await expect(page.locator("table.acks")).to_contain_text("responder")
            await expect(page.locator("table.offhours")).to_contain_text("Bob Example")
            await page.screenshot(path=str(shots / f"review-{name}.png"), full_page=True)
            await page.get_by_role("link", name="Flapping alerts").click()
            await expect(page.locator("table.flapping")).to_contain_text("region=eu")
            await page.screenshot(path=str(shots / f"flapping-{name}.png"), full_page=True)
