"""Demo traffic for ``up --demo``: a platform's day, compressed, with failure bursts.

Everything goes through the real Python client (``passiton_monitoring_client.Monitoring``) to
the running exporter: visitors from several countries (and bots) on the organizations' pages,
widget loads, dashboard API calls and payments, following a daily curve that repeats every
``day_seconds``.
Failure bursts are scheduled so that a real rule fires early: the first one, most payments of
one organization failing, starts a few seconds in and lasts long enough for the critical
``PaymentFailureRatioHigh`` rule (``for: 45s``) to fire and reach the console.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from passiton_monitoring_client import Monitoring

ORGANIZATIONS: tuple[tuple[str, float], ...] = (
    ("hope-shelter", 3.0),
    ("city-food-bank", 2.5),
    ("river-school", 1.5),
    ("animal-rescue", 1.5),
    ("clean-oceans", 1.0),
    ("youth-sports", 0.5),
)
COUNTRIES: tuple[tuple[str, float], ...] = (
    ("US", 40),
    ("GB", 12),
    ("DE", 9),
    ("CA", 8),
    ("FR", 7),
    ("IN", 7),
    ("BR", 5),
    ("NG", 4),
    ("AU", 4),
    ("", 4),  # not known
)
HUMAN_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
    "like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
BOT_AGENTS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
)
SUSPICIOUS_AGENTS = ("python-requests/2.32.3", "curl/8.5.0", "sqlmap/1.8")
PAGES = ("/", "/give", "/campaigns/:id", "/about", "/events")
ROUTES: tuple[tuple[str, str, float], ...] = (  # route, method, median milliseconds
    ("/api/donations", "POST", 180.0),
    ("/api/donations", "GET", 60.0),
    ("/api/organizations/:id", "GET", 40.0),
    ("/api/widgets/:id", "GET", 35.0),
    ("/api/dashboard/summary", "GET", 220.0),
    ("/api/auth/login", "POST", 90.0),
)
DECLINES = (
    ("insufficient_funds", "Your card has insufficient funds."),
    ("generic_decline", "Your card was declined."),
    ("expired_card", "Your card has expired."),
    ("incorrect_cvc", "Your card's security code is incorrect."),
)
PROCESSING_ERRORS = (
    (
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    (None, "Request req_8FQ2 timed out: connection reset by peer"),
)


@dataclass(frozen=True)
class Burst:
    kind: str  # "payments", "widgets" or "api"
    organization_id: str
    start: float  # seconds after the demo starts
    duration: float
    expect: str  # what the newcomer should see

    def active(self, elapsed: float) -> bool:
        return self.start <= elapsed < self.start + self.duration


def schedule(first_after: float = 10.0, period: float = 600.0, cycles: int = 50) -> list[Burst]:
    """The first payment burst early, then one burst of each kind per period, in turn."""
    bursts = [
        Burst(
            "payments",
            "animal-rescue",
            first_after,
            150.0,
            "PaymentFailureRatioHigh (critical) within about two minutes",
        )
    ]
    kinds = (
        ("widgets", "river-school", 180.0, "widget error alerts for river-school"),
        ("api", "", 180.0, "dashboard latency and 5xx alerts"),
        ("payments", "clean-oceans", 150.0, "PaymentFailureRatioHigh for clean-oceans"),
    )
    start = first_after + 300.0
    for i in range(cycles):
        kind, org, length, expect = kinds[i % len(kinds)]
        bursts.append(Burst(kind, org, start, length, expect))
        start += period / len(kinds)
    return bursts


def daily_load(elapsed: float, day_seconds: float) -> float:
    """Between 0.15 (night) and 1.0 (afternoon peak); the demo day starts in the morning."""
    phase = 2 * math.pi * ((elapsed / day_seconds + 0.3) % 1.0)
    return 0.575 - 0.425 * math.cos(phase - 0.6)


def _count(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count (Knuth's method is fine at these small means)."""
    if mean <= 0:
        return 0
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


class DemoTraffic:
    """One tick of demo traffic at a time, so tests can drive it without sleeping."""

    def __init__(
        self,
        monitoring: Monitoring,
        *,
        rng: random.Random | None = None,
        peak_per_second: float = 20.0,
        day_seconds: float = 1800.0,
        bursts: Sequence[Burst] | None = None,
    ) -> None:
        self.m = monitoring
        self.rng = rng or random.Random(7)
        self.peak = peak_per_second
        self.day_seconds = day_seconds
        self.bursts = list(schedule() if bursts is None else bursts)
        self._orgs = [o for o, _ in ORGANIZATIONS]
        self._org_weights = [w for _, w in ORGANIZATIONS]
        self._countries = [c for c, _ in COUNTRIES]
        self._country_weights = [w for _, w in COUNTRIES]

    def org(self) -> str:
        return self.rng.choices(self._orgs, self._org_weights)[0]

    def tick(self, elapsed: float, seconds: float) -> list[Burst]:
        """Emit ``seconds`` worth of events at ``elapsed``; returns the bursts now active."""
        load = daily_load(elapsed, self.day_seconds)
        active = [b for b in self.bursts if b.active(elapsed)]
        kinds = {b.kind: b for b in active}
        scale = self.peak * load * seconds
        for _ in range(_count(self.rng, scale)):
            self.visit()
        for _ in range(_count(self.rng, 0.25 * scale)):
            self.widget_load(kinds.get("widgets"))
        for _ in range(_count(self.rng, 0.5 * scale)):
            self.api_call(kinds.get("api") is not None)
        burst = kinds.get("payments")
        failing = burst.organization_id if burst is not None else None
        payments = 0.25 * scale
        for _ in range(_count(self.rng, payments)):
            org = self.org()
            self.payment(org, failure_ratio=0.8 if org == failing else 0.04)
        if failing is not None:
            # The organization's donors retry: extra attempts, 80 % of all its payments failing,
            # far above its critical threshold at any time of day, while the platform as a whole
            # stays well below the platform-wide one (whose alert would inhibit the
            # organization's): retries are a third of the platform's usual payments.
            for _ in range(_count(self.rng, 0.35 * payments)):
                self.payment(failing, failure_ratio=0.8)
        return active

    def visit(self) -> None:
        r = self.rng.random()
        if r < 0.12:
            agent = self.rng.choice(BOT_AGENTS)
        elif r < 0.15:
            agent = self.rng.choice(SUSPICIOUS_AGENTS)
        else:
            agent = self.rng.choice(HUMAN_AGENTS)
        country = self.rng.choices(self._countries, self._country_weights)[0]
        self.m.traffic.request(
            organization_id=self.org(),
            path=self.rng.choice(PAGES).replace(":id", str(self.rng.randint(1, 40))),
            country=country or None,
            user_agent=agent,
            ip=f"198.51.100.{self.rng.randint(1, 254)}",
        )

    def widget_load(self, burst: Burst | None) -> None:
        org = burst.organization_id if burst and self.rng.random() < 0.5 else self.org()
        widget = f"{org}-widget-{self.rng.randint(1, 3)}"
        error_rate = 0.6 if burst is not None and org == burst.organization_id else 0.01
        if self.rng.random() < error_rate:
            kind = self.rng.choice(("load", "render", "script"))
            report = getattr(self.m.widget, f"{kind}_error")
            report(
                organization_id=org,
                widget_id=widget,
                error=self.rng.choice(("timeout", "TypeError: undefined is not a function")),
                url=f"https://{org}.example.org/give",
            )
            return
        self.m.widget.loaded(
            organization_id=org,
            widget_id=widget,
            duration_ms=self.rng.lognormvariate(math.log(450), 0.5),
            url=f"https://{org}.example.org/give",
        )

    def api_call(self, degraded: bool) -> None:
        route, method, median = self.rng.choice(ROUTES)
        duration = self.rng.lognormvariate(math.log(median * (8 if degraded else 1)), 0.4)
        r = self.rng.random()
        if degraded and r < 0.3:
            status = 500
        elif r < 0.03:
            status = self.rng.choice((400, 404, 422))
        elif route == "/api/auth/login" and r < 0.08:
            status = 401
            self.m.dashboard.auth_failure(reason="invalid_password")
        else:
            status = 201 if method == "POST" else 200
        self.m.dashboard.endpoint(route, duration, status, method=method)
        if status == 500 and self.rng.random() < 0.3:
            self.m.dashboard.database_error("insert_donation", "deadlock detected")

    def payment(self, org: str, failure_ratio: float = 0.04) -> None:
        amount = self.rng.choice((500, 1000, 2500, 5000, 10000))
        currency = self.rng.choices(("usd", "gbp", "eur"), (6, 2, 2))[0]
        r = self.rng.random()
        if r >= failure_ratio:
            self.m.payment.success(
                organization_id=org,
                amount=amount,
                currency=currency,
                duration_ms=self.rng.lognormvariate(math.log(900), 0.3),
            )
        elif failure_ratio > 0.5 and r < failure_ratio * 0.15:
            self.m.payment.timeout(organization_id=org, duration_ms=30000, provider="stripe")
        elif failure_ratio > 0.5:
            code, error = self.rng.choice(PROCESSING_ERRORS)
            self.m.payment.failure(
                organization_id=org,
                amount=amount,
                currency=currency,
                error=error,
                failure_code=code,
            )
        else:
            code, error = self.rng.choice(DECLINES)
            self.m.payment.failure(
                organization_id=org,
                amount=amount,
                currency=currency,
                error=error,
                decline_code=code,
                failure_code="card_declined",
            )


async def run_demo(
    exporter_url: str,
    token: str,
    stop: asyncio.Event,
    out: TextIO,
    *,
    tick_seconds: float = 0.5,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Generate demo traffic until ``stop`` is set, announcing each burst."""
    monitoring = Monitoring(exporter_url, token=token or None, flush_interval=0.5)
    traffic = DemoTraffic(monitoring)
    started = clock()
    announced: set[Burst] = set()
    out.write(
        f"demo: sending traffic to {exporter_url} (6 organizations, a compressed day of "
        f"{traffic.day_seconds / 60:.0f} minutes, failure bursts)\n"
    )
    out.flush()
    try:
        while not stop.is_set():
            elapsed = clock() - started
            for burst in traffic.tick(elapsed, tick_seconds):
                if burst not in announced:
                    announced.add(burst)
                    who = f" for {burst.organization_id}" if burst.organization_id else ""
                    out.write(
                        f"demo: {burst.kind} failure burst{who} for {burst.duration:.0f}s; "
                        f"expect {burst.expect}\n"
                    )
                    out.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_seconds)
    finally:
        await monitoring.aclose()
