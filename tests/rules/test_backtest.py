"""The backtest harness: Prometheus's alert state machine replayed in Python, recording rules in
dependency order, and a two-day replay through the real exporter, promtool and Prometheus."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from backtest.alerts import Episode, alert_series, duration, episodes
from backtest.cli import ALERTMANAGER, RULES, run
from backtest.inhibit import load_inhibit_rules, pages, parse_matcher
from backtest.paging import OPENED, RAISED, RESOLVED, bridge_pages
from backtest.report import render, render_seeds, worst_of
from backtest.scenario import Incident
from backtest.simulate import CARD_TESTING_DECLINES, Platform
from backtest.tsdb import recording_levels, rule_groups


def test_for_and_keep_firing_for_as_prometheus_applies_them() -> None:
    # active at 0..300 s (6 evaluations, 60 s apart), for 120 s: fires at 120, resolves at 360
    assert episodes(range(0, 301, 60), 60, 120, 0, 10_000) == [(0, 120, 360)]
    # a run shorter than `for` never fires; pending restarts from the next run
    assert episodes([0, 60, 240, 300, 360], 60, 120, 0, 10_000) == [(240, 360, 420)]
    # for 0: fires at the first evaluation
    assert episodes([600], 60, 0, 0, 10_000) == [(600, 600, 660)]
    # without keep_firing_for a one-evaluation gap resolves it and it fires again (a flap)
    flapping = [0, 60, 120, 240, 300, 360]
    assert episodes(flapping, 60, 60, 0, 10_000) == [(0, 60, 180), (240, 300, 420)]
    # keep_firing_for 300 s holds it over the gap: one firing, resolved once the series has been
    # gone for 300 s (first missing at 420)
    assert episodes(flapping, 60, 60, 300, 10_000) == [(0, 60, 720)]
    # a gap as long as keep_firing_for resolves it
    assert episodes([0, 60, 420], 60, 0, 300, 10_000) == [(0, 0, 420), (420, 420, 780)]


def test_the_arms_of_an_or_are_one_alert() -> None:
    # `a and b or c and d` returns a's series while a holds, then c's: two names, one alert
    result = [
        {"metric": {"__name__": "ratio:rate1h", "slo": "api"}, "values": [[0, "1"], [60, "1"]]},
        {"metric": {"__name__": "ratio:rate6h", "slo": "api"}, "values": [[120, "1"], [180, "1"]]},
        {"metric": {"__name__": "ratio:rate6h", "slo": "web"}, "values": [[600, "1"]]},
    ]
    series = alert_series(result, {"severity": "critical"})
    assert series == {
        (("severity", "critical"), ("slo", "api")): {0, 60, 120, 180},
        (("severity", "critical"), ("slo", "web")): {600},
    }
    # one firing from 60 to 240, not a resolve at 120 and a second page
    assert episodes(series[(("severity", "critical"), ("slo", "api"))], 60, 60, 0, 10_000) == [
        (0, 60, 240)
    ]


def _firing(alertname: str, severity: str, fired: int, resolved: int, **labels: str) -> Episode:
    return Episode(
        alertname,
        severity,
        tuple(sorted({**labels, "severity": severity}.items())),
        fired,
        fired,
        resolved,
    )


def test_pages_as_alertmanager_inhibits_them() -> None:
    rules = load_inhibit_rules(ALERTMANAGER)
    platform = _firing("PaymentFailureRatioHighPlatform", "high", 600, 1800)
    # an organization's high page while the platform's fires: never sent
    hidden = _firing("PaymentFailureRatioHigh", "high", 700, 1700, organization_id="org-1")
    # one that outlasts it pages when the platform's resolves
    late = _firing("PaymentFailureRatioHigh", "high", 700, 2400, organization_id="org-2")
    # a critical one is not inhibited by the platform's high page
    critical = _firing("PaymentFailureRatioHigh", "critical", 700, 900, organization_id="org-3")
    # later, the organization's critical page inhibits its high one (equal organization_id), not
    # another organization's
    second = _firing("PaymentFailureRatioHigh", "critical", 3000, 3600, organization_id="org-3")
    same_org = _firing("PaymentFailureRatioHigh", "high", 3100, 3500, organization_id="org-3")
    other_org = _firing("PaymentFailureRatioHigh", "high", 3100, 3500, organization_id="org-4")
    paged = pages([platform, hidden, late, critical, second, same_org, other_org], rules)
    assert [(e.label("organization_id"), e.severity, e.fired_at) for e in paged] == [
        ("", "high", 600),
        ("org-2", "high", 1800),
        ("org-3", "critical", 700),
        ("org-3", "critical", 3000),
        ("org-4", "high", 3100),
    ]
    assert parse_matcher('alertname=~"A|B"').matches({"alertname": "B"})
    assert not parse_matcher('alertname=~"A|B"').matches({"alertname": "AB"})
    assert parse_matcher('severity!="low"').matches({})


def test_pages_as_the_bridge_sends_them_per_incident() -> None:
    """The firings through the bridge's own incident logic: one page when an incident opens,
    one when its severity rises, one resolve when its last alert resolves."""
    found = [
        # the database down: its critical alert, the API's budget burning with it, and the
        # effects Alertmanager held back until the database's alert resolved (at 1200)
        _firing("DatabaseUnreachable", "critical", 120, 1200),
        _firing("ApiErrorBudgetBurn", "critical", 240, 2000, category="dashboard"),
        _firing("ApiErrorRatioHigh", "high", 1200, 1800, route="/api/donations"),
        _firing("ApiErrorRatioHigh", "high", 1200, 1860, route="/api/auth/login"),
        _firing("StripeWebhookHandlerFailing", "high", 1200, 1500, category="payment"),
        # unrelated, at the same time: an incident of its own
        _firing("AuthFailureSpike", "high", 240, 900),
        # the CDN down, traffic dropping first: opened at high, raised to critical
        _firing("TrafficDrop", "high", 10_000, 12_000, organization_id="org-1"),
        _firing("WidgetPlatformOutage", "critical", 10_060, 11_000),
        _firing("TrafficDrop", "high", 10_120, 12_100, organization_id="org-2"),
        # one notification (alertname, category) with two severities: one page, at critical
        _firing("PaymentFailureRatioHigh", "high", 20_000, 20_600, organization_id="org-1"),
        _firing("PaymentFailureRatioHigh", "critical", 20_000, 20_900, organization_id="org-2"),
        # the same alert long after the incident resolved: a new incident; still firing at the end
        _firing("PaymentFailureRatioHigh", "high", 30_000, 40_060, organization_id="org-1"),
        _firing("Watchdog", "none", 0, 40_060),
    ]
    paging = bridge_pages(found, end=40_000)
    pages = [(p.at, p.kind, p.severity, p.alertnames) for p in paging.pages]
    assert pages == [
        (120, OPENED, "critical", ("DatabaseUnreachable",)),
        (240, OPENED, "high", ("AuthFailureSpike",)),
        (900, RESOLVED, "high", ("AuthFailureSpike",)),
        (2000, RESOLVED, "critical", (
            "DatabaseUnreachable", "ApiErrorBudgetBurn", "ApiErrorRatioHigh",
            "StripeWebhookHandlerFailing",
        )),
        (10_000, OPENED, "high", ("TrafficDrop",)),
        (10_060, RAISED, "critical", ("WidgetPlatformOutage",)),
        (12_100, RESOLVED, "critical", ("TrafficDrop", "WidgetPlatformOutage")),
        (20_000, OPENED, "critical", ("PaymentFailureRatioHigh",)),
        (20_900, RESOLVED, "critical", ("PaymentFailureRatioHigh",)),
        (30_000, OPENED, "high", ("PaymentFailureRatioHigh",)),
    ]  # fmt: skip
    database, auth, cdn, payment, again = sorted(paging.causes)
    assert paging.causes[payment] == "PaymentFailureRatioHigh"
    assert paging.causes[database] == "DatabaseUnreachable"
    assert paging.causes[cdn] == "WidgetPlatformOutage"  # upstream of the traffic it drops
    assert paging.causes[auth] == "AuthFailureSpike"
    assert len({p.incident for p in paging.pages}) == 5
    assert paging.alertnames[again] == ["PaymentFailureRatioHigh"]


def test_durations() -> None:
    assert duration("1h30m") == 5400
    assert duration("45s") == 45
    assert duration(None) == 0


def test_recording_rules_by_dependency_level() -> None:
    levels = recording_levels(rule_groups(sorted(RULES.glob("*.yml"))))
    level_of = {rule["record"]: n for n, rules in enumerate(levels) for rule in rules}
    # a ratio after its rates, the baseline's statistics after its samples after their rate
    assert level_of["organization:passiton_payment_attempts:rate1m"] == 0
    assert (
        level_of["organization:passiton_payment_processing_failure_ratio:rate1m"]
        > level_of["organization:passiton_payment_processing_failures:rate1m"]
        > level_of["organization:passiton_payment_attempts:rate1m"]
    )
    assert (
        level_of["organization:passiton_traffic_requests:rate5m_zscore"]
        > level_of["organization:passiton_traffic_requests:baseline_mean"]
        > level_of["organization:passiton_traffic_requests:rate1h_weekly"]
        > level_of["organization:passiton_traffic_requests:rate1h"]
    )


@pytest.mark.timeout(900)  # CPU-bound: two days of traffic through promtool and Prometheus
def test_two_day_replay(tmp_path: Path) -> None:
    """A calm day, then a day of incidents (payment outages at a small and a large organization,
    the database down (failing the API and Stripe's webhooks too), an API 5xx burst, brute
    force, a widget CDN outage, slow API, Stripe webhook handler failing), through the exporter,
    promtool and a real Prometheus, and the bridge's incidents."""
    report, found = run(days=2, incident_days=1, warmup=3 * 3600, work=tmp_path / "work")
    by_name = {r.name: r for r in report.incidents}
    assert len(by_name) == 8
    small = by_name["payment outage, small organization"]
    assert small.detected
    assert small.time_to_detect is not None
    assert small.time_to_detect <= 10 * 60
    # failures in a row without a success: one page for the whole outage
    assert small.alerts.get("PaymentConsecutiveFailures/critical") == 1
    database = by_name["database down"]
    assert database.detected_by == "DatabaseUnreachable/critical"
    assert by_name["payment outage, large organization"].detected
    # the probe is configured in the replay and healthy outside its incident
    assert not [
        e for e in found if e.alertname == "DatabaseUnreachable" and e.fired_at < database.start
    ]
    assert "DatabaseUnreachable/critical" not in report.outside
    # the widgets' errors come through the beacon from many donors: the outage rule sees them
    assert by_name["widget CDN outage"].detected_by == "WidgetPlatformOutage/critical"
    # what the tuning holds: every incident pages, once per alert, nothing else pages
    summary = report.summary
    assert summary["detected"] == summary["incidents"]
    assert summary["flaps"] == 0
    assert summary["most_pages_per_alert_per_incident"] == 1
    assert summary["pages_outside_incidents"] == 0
    # the database down shows in two categories (dashboard, payment: what Alertmanager groups
    # apart); its effects wait for the database's alert, then join its incident: one page
    assert "StripeWebhookHandlerFailing/high" in database.alerts
    # every route failing is the platform's API alert; the routes' own are held back by it
    assert "ApiErrorRatioHighPlatform/high" in database.alerts
    assert "ApiErrorRatioHigh/high" not in database.alerts
    assert database.firings > 3
    assert database.bridge_incidents == 1
    assert database.probable_cause == ["DatabaseUnreachable"]
    assert database.pages_by_severity == {"critical": 1}
    assert database.resolves == 1
    # as the bridge pages: every incident at most once per severity, and fewer pages than firings
    for result in report.incidents:
        assert result.pages >= 1, result.name
        assert max(result.pages_by_severity.values()) == 1, result.name
    assert summary["most_bridge_pages_per_severity_per_incident"] == 1
    assert summary["bridge_pages_in_incidents"] < summary["firings_in_incidents"]
    table = render(report)
    assert "| database down | DatabaseUnreachable | yes" in table
    row = f"| database down | {database.firings} | 1 | critical 1 | 1 | 1 | DatabaseUnreachable |"
    assert row in table


def test_several_seeds_report_each_and_the_worst() -> None:
    base = {
        "incidents": 16,
        "detected": 16,
        "median_time_to_detect_seconds": 120,
        "max_time_to_detect_seconds": 240,
        "pages_in_calm_weeks": 0,
        "flaps": 0,
        "most_pages_per_alert_per_incident": 1,
        "most_bridge_pages_per_severity_per_incident": 1,
    }
    summaries = {
        7: base,
        8: {**base, "detected": 15, "max_time_to_detect_seconds": 300},
        9: {**base, "flaps": 2, "median_time_to_detect_seconds": 180},
    }
    worst = worst_of(summaries)
    assert worst["detected"] == {"value": 15, "seed": 8}
    assert worst["max_time_to_detect_seconds"] == {"value": 300, "seed": 8}
    assert worst["median_time_to_detect_seconds"] == {"value": 180, "seed": 9}
    assert worst["flaps"] == {"value": 2, "seed": 9}
    table = render_seeds(summaries).splitlines()
    assert table[2].startswith("| 7 | 16/16 | 120 | 240 | 0 | 0 |")
    assert table[-1].startswith("| worst | 15 (seed 8) | 180 (seed 9) | 300 (seed 8) |")


def test_card_testing_adds_declined_dollar_payments_and_leaves_the_rest_of_the_history() -> None:
    """The card-testing incident: $1 payments at its organization, each card (payment id) once,
    declined with card testing's codes, drawn from a generator of their own, so that every other
    event of the history is the one drawn without it (payment ids aside: they are numbered)."""
    card = Incident("card testing", "payment", 60, 120, ("PaymentCardTesting",), "org-large-2")

    def history(incidents: list[Incident]) -> list[list[msgspec.Struct]]:
        platform = Platform(0, incidents, frozenset(), seed=7)
        return [platform.events(minute * 60, 60) for minute in range(5)]

    def without_ids(events: list[msgspec.Struct]) -> list[msgspec.Struct]:
        return [
            msgspec.structs.replace(e, payment_id=None) if hasattr(e, "payment_id") else e
            for e in events
        ]

    tested, plain = history([card]), history([])
    testing = [[e for e in events if getattr(e, "amount", None) == 100] for events in tested]
    for events, before in zip(tested, plain, strict=True):
        rest = [e for e in events if getattr(e, "amount", None) != 100]
        assert without_ids(rest) == without_ids(before)
    assert [bool(added) for added in testing] == [False, True, True, False, False]
    attempts = testing[1] + testing[2]
    assert len(attempts) >= 15
    assert {e.organization_id for e in attempts} == {"org-large-2"}
    assert len({e.payment_id for e in attempts}) == len(attempts)
    assert {e.decline_code for e in attempts} <= {code for code, _ in CARD_TESTING_DECLINES}
