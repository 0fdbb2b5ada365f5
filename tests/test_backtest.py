"""The backtest harness: Prometheus's alert state machine replayed in Python, recording rules in
dependency order, and a two-day replay through the real exporter, promtool and Prometheus."""

from __future__ import annotations

from pathlib import Path

from backtest.alerts import duration, episodes
from backtest.cli import RULES, run
from backtest.report import render
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


def test_two_day_replay(tmp_path: Path) -> None:
    """A calm day, then a day of incidents (payment outages at a small and a large organization,
    the database down, an API 5xx burst, brute force, a widget CDN outage, slow API, Stripe
    webhook handler failing), through the exporter, promtool and a real Prometheus."""
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
    table = render(report)
    assert "| database down | DatabaseUnreachable | yes" in table
