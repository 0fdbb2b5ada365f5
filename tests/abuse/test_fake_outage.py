"""Attack: page on-call at night by faking a platform-wide widget outage through the beacon.

The payload of issue 10 (about 500 `widget.load_error` events over 101 made-up organizations in
one request) is refused by the real exporter. What is left to an attacker is replaying the real
keys of a few widgets from a few machines: the exporter's own numbers for that flood (measured
over HTTP through a trusted proxy) go into promtool with the repository's rules, which must
raise the security signal (WidgetFailureFloodFromFewSources, category widget) at high and never
the critical WidgetPlatformOutage. The same failures reported by the platform through the
authenticated events API still page.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import httpx
import yaml

from exporter.beacon_keys import beacon_key
from tests.abuse.exporter_process import BEACON_SECRET, ORIGIN, TOKEN, exporter_process

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules"
ORGS = ["org-a", "org-b", "org-c"]
FIRING = 'alertstate="firing"'


def test_the_issue_payload_is_refused_and_records_nothing():
    with exporter_process() as exporter, httpx.Client(timeout=30) as http:
        payload = [
            {"type": "widget.load_error", "organization_id": f"org-{i % 101}", "widget_id": "w"}
            for i in range(500)
        ]
        key = beacon_key(BEACON_SECRET, "org-0", "w")
        for params in ({}, {"key": "v1." + "A" * 22}, {"key": key}):
            response = http.post(f"{exporter.public}/v1/beacon", params=params, json=payload)
            assert response.status_code in (401, 403, 413), response.text
        # within the batch limit, a real key of one widget does not carry other organizations
        response = http.post(f"{exporter.public}/v1/beacon", params={"key": key}, json=payload[:20])
        assert response.status_code == 403
        assert "passiton_widget_errors_total{" not in exporter.metrics()


def flood(exporter, http: httpx.Client, clients: list[str], beacons: int) -> None:
    for i in range(beacons):
        org = ORGS[i % len(ORGS)]
        response = http.post(
            f"{exporter.public}/v1/beacon",
            params={"key": beacon_key(BEACON_SECRET, org, "w")},
            json=[{"type": "widget.load_error", "organization_id": org, "widget_id": "w"}] * 20,
            headers={"Origin": ORIGIN, "X-Forwarded-For": clients[i % len(clients)]},
        )
        assert response.status_code == 202, response.text


def promtool_case(distinct_sources: float, beacon_reports_per_step: float, events_per_step: float):
    """Three organizations with real traffic whose widgets 'fail' from 10m on, reported at the
    measured rates; the distinct-source gauge at its measured value."""
    series = []
    for org in ORGS:
        labels = f'instance="e:1",organization_id="{org}",widget_id="w"'
        series.append(
            {"series": f"passiton_widget_loads_total{{{labels}}}", "values": "0+4x40 160x40"}
        )
        series.append(
            {
                "series": f'passiton_widget_errors_total{{{labels},kind="load"}}',
                "values": "0x40 40+40x40",
            }
        )
    series.append(
        {
            "series": 'passiton_widget_error_reports_total{instance="e:1",channel="beacon"}',
            "values": f"0x40 0+{beacon_reports_per_step}x40",
        }
    )
    series.append(
        {
            "series": 'passiton_widget_error_reports_total{instance="e:1",channel="events"}',
            "values": f"0x40 0+{events_per_step}x40",
        }
    )
    series.append(
        {
            "series": 'passiton_widget_failure_distinct_sources{instance="e:1"}',
            "values": f"0x40 {distinct_sources}x40",
        }
    )
    return series


def fired(tmp_path: Path, name: str, series: list[dict]) -> dict[str, bool]:
    """Which of the two alerts promtool sees firing at 18m (a test per alert and outcome)."""
    outcome = {}
    for alert in ("WidgetPlatformOutage", "WidgetFailureFloodFromFewSources"):
        for firing in (True, False):
            suite = {
                "rule_files": [str(RULES / "widget.yml"), str(RULES / "security.yml")],
                "evaluation_interval": "15s",
                "group_eval_order": [
                    "passiton-widget-recording",
                    "passiton-widget-alerts",
                    "passiton-security-recording",
                    "passiton-security-alerts",
                ],
                "tests": [
                    {
                        "name": name,
                        "interval": "15s",
                        "input_series": series,
                        "promql_expr_test": [
                            {
                                "expr": f'count(ALERTS{{alertname="{alert}",{FIRING}}})',
                                "eval_time": "18m",
                                "exp_samples": [{"labels": "{}", "value": 1}] if firing else [],
                            }
                        ],
                    }
                ],
            }
            path = tmp_path / f"{name}-{alert}-{firing}.yml"
            path.write_text(yaml.safe_dump(suite))
            promtool = shutil.which("promtool")
            assert promtool, "promtool is required (make debs installs it)"
            result = subprocess.run(
                [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=120
            )
            if result.returncode == 0:
                outcome[alert] = firing
    assert set(outcome) == {"WidgetPlatformOutage", "WidgetFailureFloodFromFewSources"}
    return outcome


def test_a_flood_from_few_clients_is_a_security_alert_not_a_page(tmp_path: Path):
    env = {"EXPORTER_TRUSTED_PROXIES": "127.0.0.1", "EXPORTER_BEACON_RATE_PER_MINUTE": "1000"}
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        flood(exporter, http, ["203.0.113.7", "203.0.113.8"], beacons=60)
        sources = exporter.sample("passiton_widget_failure_distinct_sources")
        reports = exporter.sample('passiton_widget_error_reports_total{channel="beacon"}')
    assert round(sources) == 2
    assert reports == 60 * 20
    # the measured flood, sustained: its reports per 15 s step, from the measured sources
    outcome = fired(tmp_path, "few-clients", promtool_case(sources, reports / 4, 0))
    assert outcome == {"WidgetPlatformOutage": False, "WidgetFailureFloodFromFewSources": True}


def test_the_same_failures_from_many_clients_or_the_events_api_still_page(tmp_path: Path):
    env = {"EXPORTER_TRUSTED_PROXIES": "127.0.0.1", "EXPORTER_BEACON_RATE_PER_MINUTE": "1000"}
    clients = [f"198.51.100.{i}" for i in range(1, 41)]
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        flood(exporter, http, clients, beacons=80)
        sources = exporter.sample("passiton_widget_failure_distinct_sources")
        events = [
            {"type": "widget.load_error", "organization_id": org, "widget_id": "w"} for org in ORGS
        ] * 100
        response = http.post(
            f"{exporter.internal}/v1/events",
            json=events,
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert response.status_code == 202
        from_api = exporter.sample('passiton_widget_error_reports_total{channel="events"}')
    assert sources >= 35
    assert from_api == 300
    many = fired(tmp_path, "many-clients", promtool_case(sources, 400, 0))
    assert many == {"WidgetPlatformOutage": True, "WidgetFailureFloodFromFewSources": False}
    api = fired(tmp_path, "events-api", promtool_case(0, 0, from_api / 4))
    assert api["WidgetPlatformOutage"] is True
