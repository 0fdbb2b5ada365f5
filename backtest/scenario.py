"""The synthetic platform: organizations with daily and weekly seasonality, and seeded incidents
with their ground truth (when, what, and which alerts are expected to catch it)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DAY = 86400
HOUR = 3600
MINUTE = 60


@dataclass(frozen=True)
class Organization:
    id: str
    payments_per_minute: float  # at the daily peak
    requests_per_minute: float
    widget_loads_per_minute: float
    utc_offset_hours: int
    countries: tuple[tuple[str, float], ...]
    weekend_factor: float = 0.8
    widgets: int = 2

    def activity(self, t: float) -> float:
        """Seasonal factor in [~0.1, ~1.2]: a daily curve peaking mid-afternoon local time, and a
        weekly one (weekends differ)."""
        local = t + self.utc_offset_hours * HOUR
        hour = (local % DAY) / HOUR
        daily = 0.12 + 0.88 * math.exp(-(((hour - 15.0) / 4.5) ** 2))
        weekday = int(local // DAY + 3) % 7  # 1970-01-01 was a Thursday; 0 = Monday
        weekly = self.weekend_factor if weekday >= 5 else 1.0
        return daily * weekly


ORGANIZATIONS: tuple[Organization, ...] = (
    Organization("org-large-1", 6.0, 90, 40, -5, (("US", 0.8), ("CA", 0.1), ("GB", 0.1))),
    Organization("org-large-2", 4.0, 70, 30, 1, (("DE", 0.6), ("AT", 0.2), ("CH", 0.2)), 1.2),
    Organization("org-medium-1", 2.0, 35, 14, 0, (("GB", 0.9), ("IE", 0.1))),
    Organization("org-medium-2", 2.0, 30, 12, -5, (("US", 0.95), ("MX", 0.05))),
    Organization("org-medium-3", 1.5, 30, 10, 1, (("FR", 0.85), ("BE", 0.15))),
    Organization("org-medium-4", 1.5, 25, 10, -8, (("US", 0.9), ("CA", 0.1)), 1.1),
    Organization("org-small-1", 1.2, 15, 5, -5, (("US", 1.0),)),
    Organization("org-small-2", 1.5, 15, 5, 0, (("GB", 1.0),)),
    Organization("org-small-3", 0.8, 12, 4, 1, (("NL", 0.9), ("DE", 0.1))),
    Organization("org-small-4", 0.6, 10, 3, 10, (("AU", 0.9), ("NZ", 0.1))),
    Organization("org-small-5", 0.5, 10, 3, -6, (("US", 1.0),)),
    Organization("org-small-6", 0.4, 8, 3, 2, (("ZA", 1.0),)),
)

# Every organization also draws a few visitors from abroad.
FOREIGN_SHARE = 0.03
FOREIGN_COUNTRIES = ("US", "GB", "DE", "FR", "IN", "ES", "IT")
BOT_SHARE = 0.08
SUSPICIOUS_SHARE = 0.005

ROUTES = (
    # route, method, requests per minute at the peak
    ("/api/donations", "POST", 30.0),
    ("/api/organizations/{id}", "GET", 50.0),
    ("/api/widgets/{id}", "GET", 60.0),
    ("/api/auth/login", "POST", 15.0),
)


@dataclass(frozen=True)
class Incident:
    """One seeded incident: [start, end) in seconds from the start of the replay."""

    name: str
    category: str
    start: int
    duration: int
    expected: tuple[str, ...]  # any of these alerts firing counts as detection
    target: str = ""  # organization, route, ... the incident applies to
    params: dict[str, float | str] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + self.duration

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


def _at(day: int, hour: float) -> int:
    return day * DAY + int(hour * HOUR)


def incidents(first_day: int, days: int) -> list[Incident]:
    """The seeded incidents, eight a day three hours apart from ``first_day`` (at various hours,
    in peaks and troughs); on the second day also a decline surge (14:30), card testing at night
    (04:00) and one more at its end. With one incident day only
    the first day's eight are seeded.

    Two show one cause in several categories: the database down (its probe and errors, the API
    answering 503, Stripe's webhooks failing: dashboard and payment alerts) and the widget CDN
    down while traffic drops (widget and traffic alerts)."""
    plan: list[tuple[int, float, Incident]] = [
        (0, 13.0, Incident("payment outage, small organization", "payment", 0, 45 * MINUTE,
                           ("PaymentConsecutiveFailures", "PaymentFailureRatioHigh"),
                           "org-small-2")),
        (0, 19.0, Incident("payment outage, large organization", "payment", 0, 30 * MINUTE,
                           ("PaymentFailureRatioHigh",), "org-large-1")),
        (0, 1.0, Incident("database down", "dashboard", 0, 15 * MINUTE,
                           ("DatabaseUnreachable",))),
        (0, 10.0, Incident("API 5xx burst", "dashboard", 0, 20 * MINUTE,
                           ("ApiErrorRatioHigh", "ApiErrorBudgetBurn"),
                           "/api/organizations/{id}")),
        (0, 4.0, Incident("brute force", "dashboard", 0, 30 * MINUTE, ("AuthFailureSpike",))),
        (0, 16.0, Incident("widget CDN outage", "widget", 0, 30 * MINUTE,
                           ("WidgetPlatformOutage", "WidgetLoadErrorRatioHigh"))),
        (0, 22.0, Incident("Stripe webhook handler failing", "payment", 0, 30 * MINUTE,
                           ("StripeWebhookHandlerFailing",))),
        (1, 16.0, Incident("decline-code cluster", "payment", 0, 60 * MINUTE,
                           ("PaymentDeclineCodeAcrossOrganizations", "PaymentDeclineCodeSurge",
                            "PaymentFailureRatioHighPlatform"))),
        (1, 10.0, Incident("widget script errors", "widget", 0, 40 * MINUTE,
                           ("WidgetScriptErrorSpike",), "org-medium-1")),
        (1, 19.0, Incident("traffic spike", "traffic", 0, 60 * MINUTE, ("TrafficSpike",),
                           "org-medium-2")),
        (1, 7.0, Incident("flood from few sources", "traffic", 0, 30 * MINUTE,
                           ("TrafficSuspiciousSourceConcentration",), "org-large-2")),
        (1, 13.0, Incident("bot surge", "traffic", 0, 30 * MINUTE, ("TrafficBotShareHigh",),
                           "org-medium-3")),
        (1, 22.0, Incident("geographic shift", "traffic", 0, 30 * MINUTE, ("TrafficGeoAnomaly",),
                           "org-large-1")),
        (0, 7.0, Incident("slow API", "dashboard", 0, 30 * MINUTE,
                           ("DashboardResponseTimeHigh",), "/api/donations")),
        (1, 1.0, Incident("traffic drop", "traffic", 0, 45 * MINUTE,
                          ("TrafficDropPlatform", "TrafficDrop"))),
        # issue 22: a mid-size organization (2 payments a minute at its peak, 14:30 UTC is
        # mid-afternoon in its time zone) has 70% of its payments declined for 20 minutes
        (1, 14.5, Incident("decline surge, mid-size organization", "payment", 0, 20 * MINUTE,
                           ("PaymentDeclineSurge",), "org-medium-1")),
        # card testing at night (04:00 UTC, 05:00 at org-large-2, which then takes half a payment
        # a minute): 15 stolen cards a minute tried with $1 payments, 20 minutes
        (1, 4.0, Incident("card testing", "payment", 0, 20 * MINUTE,
                          ("PaymentCardTesting", "PaymentDeclineSurge"), "org-large-2")),
        # one cause in two categories: donors who cannot load a widget do not arrive (last, so
        # that the history before it is the same as without it)
        (1, 23.0, Incident("widget CDN outage, traffic drops", "widget", 0, 45 * MINUTE,
                           ("WidgetPlatformOutage", "TrafficDropPlatform", "TrafficDrop"))),
    ]  # fmt: skip
    seeded = []
    for day, hour, incident in plan:
        if day >= days:
            continue
        start = _at(first_day + day, hour)
        seeded.append(
            Incident(
                incident.name,
                incident.category,
                start,
                incident.duration,
                incident.expected,
                incident.target,
                incident.params,
            )
        )
    return seeded


# The alerts that page (critical and high): any firing outside an incident is a false page.
PAGING_SEVERITIES = ("critical", "high")
# An alert firing this long after an incident ended still belongs to it.
GRACE_SECONDS = 20 * MINUTE
