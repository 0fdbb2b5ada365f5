"""Writes traffic_baseline_test.yml: promtool tests of the seasonal traffic baseline over weeks of
synthetic traffic with a daily curve. Run it after changing the scenarios below; the test suite
checks that the committed YAML is what this script writes.

    .venv/bin/python prometheus/tests/generate_traffic_baseline.py
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

STEP_MINUTES = 5
EVALUATION_MINUTES = 10
STEPS_PER_DAY = 24 * 60 // STEP_MINUTES
OUT = Path(__file__).with_name("traffic_baseline_test.yml")

Rate = Callable[[int, float], float]  # (day, hour of day) -> requests per second


def daily_curve(hour: float) -> float:
    """0.5 req/s at night, 2 req/s in the day, with two-hour ramps in 15 minute steps."""
    if 6 <= hour < 8:
        return 0.5 + 1.5 * (int((hour - 6) * 4) + 1) / 8
    if 20 <= hour < 22:
        return 2 - 1.5 * (int((hour - 20) * 4) + 1) / 8
    return 2.0 if 8 <= hour < 20 else 0.5


def series(rate: Rate, days: int, stop_at: float | None = None) -> str:
    """promtool values of a counter fed at `rate`, one sample every 5 minutes, compressed into
    `start+increment x count` runs; after `stop_at` (hours from the start) the series is missing."""
    increments = []
    for step in range(days * STEPS_PER_DAY):
        day, minute = divmod(step * STEP_MINUTES, 24 * 60)
        increments.append(rate(day, minute / 60) * STEP_MINUTES * 60)
    stop = len(increments) if stop_at is None else int(stop_at * 60 / STEP_MINUTES)
    runs: list[str] = []
    value, i = 0.0, 0
    while i < stop:
        j = i
        while j + 1 < stop and increments[j + 1] == increments[i]:
            j += 1
        count = j - i + 1
        runs.append(f"{_num(value)}+{_num(increments[i])}x{count - 1}")
        value += increments[i] * count
        i = j + 1
    if stop < len(increments):
        runs.append(f"_x{len(increments) - stop}")
    return " ".join(runs)


def _num(x: float) -> str:
    return f"{x:.6f}".rstrip("0").rstrip(".")


def curve(scale: float = 1.0, **overrides: tuple[float, float, float]) -> Rate:
    """The daily curve times `scale`; `overrides` maps "d<day>" to (from hour, to hour, rate)."""

    def rate(day: int, hour: float) -> float:
        window = overrides.get(f"d{day}")
        if window and window[0] <= hour < window[1]:
            return window[2]
        return scale * daily_curve(hour)

    return rate


def weekly_scales(*scales: float) -> Rate:
    """The daily curve with a different scale each week (the last one repeats)."""

    def rate(day: int, hour: float) -> float:
        return scales[min(day // 7, len(scales) - 1)] * daily_curve(hour)

    return rate


def input_series(name: str, org: str, values: str) -> str:
    return (
        f'      - series: \'passiton_traffic_requests_total{{instance="e:1",'
        f'organization_id="{org}",country="US",client="human"}}\'\n'
        f"        values: '{values}'\n"
    )


def alert(name: str, org: str, severity: str, z: str, direction: str) -> str:
    word = "Traffic spike" if name == "TrafficSpike" else "Traffic drop"
    description = (
        f"Requests to organization {org} are {z} standard deviations {direction}"
        " the same hour of previous weeks (or days)."
    )
    return f"""          - exp_labels:
              severity: {severity}
              category: traffic
              organization_id: {org}
            exp_annotations:
              summary: "{word} for organization {org}"
              description: "{description}"
              runbook_url: "docs/runbooks.md#{name.lower()}"
"""


def check(at: str, name: str, alerts: str = "") -> str:
    if not alerts:
        return f"      - eval_time: {at}\n        alertname: {name}\n        exp_alerts: []\n"
    return f"      - eval_time: {at}\n        alertname: {name}\n        exp_alerts:\n{alerts}"


def render() -> str:
    days = 15
    two_weeks = [
        # night-time spike on day 14 (2 req/s is normal by day, not at 3 a.m.)
        input_series("a", "org-a", series(curve(d14=(2.5, 4.5, 2.0)), days)),
        # day-time drop on day 14 to a tenth
        input_series("b", "org-b", series(curve(d14=(10, 12, 0.2)), days)),
        # a small organization: ten times more at night, and nothing by day, both under the
        # minimum volume
        input_series("c", "org-c", series(curve(0.02, d14=(2.5, 4.5, 0.1)), days)),
        # reports stop at 10:00 on day 14: counted as no traffic at all
        input_series("d", "org-d", series(curve(), days, stop_at=14 * 24 + 10)),
        # weeks at 1x and 1.4x the curve, day 14 at 1.2x with 0.95 req/s at night: a z-score
        # of 2.9, just under the threshold
        input_series(
            "e",
            "org-e",
            series(
                lambda day, hour: (
                    0.95
                    if day == 14 and 2.5 <= hour < 4.5
                    else weekly_scales(1.0, 1.4, 1.2)(day, hour)
                ),
                days,
            ),
        ),
    ]
    two_weeks_checks = [
        check("14d2h20m", "TrafficSpike"),
        check("14d3h", "TrafficSpike", alert("TrafficSpike", "org-a", "medium", "15.0", "above")),
        check("14d7h", "TrafficSpike"),
        check("14d7h", "TrafficDrop"),
        check("14d9h50m", "TrafficDrop"),
        check(
            "14d10h30m",
            "TrafficDrop",
            alert("TrafficDrop", "org-b", "high", "-4.5", "below")
            + alert("TrafficDrop", "org-d", "high", "-5.0", "below"),
        ),
        check("14d12h", "TrafficSpike"),
    ]
    zscore_e = (
        'round(organization:passiton_traffic_requests:rate5m_zscore{organization_id="org-e"}'
        " * 1000) / 1000"
    )
    mean_a = (
        'round(organization:passiton_traffic_requests:baseline_mean{organization_id="org-a"}'
        " * 1000) / 1000"
    )
    spike_a = alert("TrafficSpike", "org-a", "medium", "15.0", "above")
    two_days = [input_series("a", "org-a", series(curve(d2=(2.5, 4.5, 2.0)), 3))]
    four_days = [input_series("a", "org-a", series(curve(d4=(2.5, 4.5, 2.0)), 5))]

    text = f"""# Generated by generate_traffic_baseline.py; edit that script, not this file.
rule_files:
  - ../rules/traffic.yml

evaluation_interval: {EVALUATION_MINUTES}m

# Recording rules first, so alerts read the values recorded at the same evaluation.
group_eval_order:
  - passiton-traffic-recording
  - passiton-traffic-alerts

tests:
  - name: seasonal baseline from two weeks of history
    interval: {STEP_MINUTES}m
    input_series:
{"".join(two_weeks)}    promql_expr_test:
      - expr: round(organization:passiton_traffic_requests:baseline_mean * 1000) / 1000
        eval_time: 14d3h
        exp_samples:
          - labels: '{{organization_id="org-a"}}'
            value: 0.5
          - labels: '{{organization_id="org-b"}}'
            value: 0.5
          - labels: '{{organization_id="org-c"}}'
            value: 0.01
          - labels: '{{organization_id="org-d"}}'
            value: 0.5
          - labels: '{{organization_id="org-e"}}'
            value: 0.6
      - expr: round(organization:passiton_traffic_requests:baseline_stddev * 1000) / 1000
        eval_time: 14d3h
        exp_samples:
          - labels: '{{organization_id="org-a"}}'
            value: 0
          - labels: '{{organization_id="org-b"}}'
            value: 0
          - labels: '{{organization_id="org-c"}}'
            value: 0
          - labels: '{{organization_id="org-d"}}'
            value: 0
          - labels: '{{organization_id="org-e"}}'
            value: 0.1
      - expr: count by (organization_id) (organization:passiton_traffic_requests:rate1h_weekly)
        eval_time: 14d3h
        exp_samples:
          - labels: '{{organization_id="org-a"}}'
            value: 2
          - labels: '{{organization_id="org-b"}}'
            value: 2
          - labels: '{{organization_id="org-c"}}'
            value: 2
          - labels: '{{organization_id="org-d"}}'
            value: 2
          - labels: '{{organization_id="org-e"}}'
            value: 2
      - expr: {zscore_e}
        eval_time: 14d3h
        exp_samples:
          - labels: '{{organization_id="org-e"}}'
            value: 2.917
      # the hour centred on 7:00, in the morning ramp (6:30 to 7:30: 1.0625 to 1.625 req/s)
      - expr: {mean_a}
        eval_time: 14d7h
        exp_samples:
          - labels: '{{organization_id="org-a"}}'
            value: 1.344
    alert_rule_test:
{"".join(two_weeks_checks)}
  # Less than three days of history: no baseline, so a spike cannot be judged and does not fire.
  - name: no baseline with two days of history
    interval: {STEP_MINUTES}m
    input_series:
{"".join(two_days)}    promql_expr_test:
      - expr: organization:passiton_traffic_requests:baseline_mean
        eval_time: 2d3h
        exp_samples: []
    alert_rule_test:
{check("2d3h", "TrafficSpike")}
  # Four days of history: the same hour of the previous days stands in for the weekly baseline.
  - name: daily baseline with four days of history
    interval: {STEP_MINUTES}m
    input_series:
{"".join(four_days)}    promql_expr_test:
      - expr: count by (organization_id) (organization:passiton_traffic_requests:rate1h_daily)
        eval_time: 4d3h
        exp_samples:
          - labels: '{{organization_id="org-a"}}'
            value: 4
      - expr: round(organization:passiton_traffic_requests:baseline_mean * 1000) / 1000
        eval_time: 4d3h
        exp_samples:
          - labels: '{{organization_id="org-a"}}'
            value: 0.5
    alert_rule_test:
{check("4d2h20m", "TrafficSpike")}{check("4d3h", "TrafficSpike", spike_a)}"""
    return text


def main() -> None:
    OUT.write_text(render())


if __name__ == "__main__":
    main()
