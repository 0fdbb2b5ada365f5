"""Attack: page on-call at night by faking a platform-wide widget outage through the beacon.

The payload of issue 10 (about 500 `widget.load_error` events over 101 made-up organizations in
one request) is refused by the real exporter. What is left to an attacker is replaying the real
keys of a few widgets from a few machines: the exporter's own numbers for that flood (measured
over HTTP through a trusted proxy) go into promtool with the repository's rules, which must
raise the security signal (WidgetFailureFloodFromFewSources, category widget) at medium and
nothing that pages: no critical WidgetPlatformOutage, no high WidgetLoadErrorRatioHigh for the
organizations whose keys were replayed, no alert of severity critical or high at all. The same
failures reported by many clients, or by the platform through the authenticated events API,
still page.
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
# what pages (docs/architecture.md, the severity table): critical and high
PAGES = "pages"


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


def promtool_case(
    distinct_sources: float,
    beacon_reports_per_step: float,
    events_per_step: float,
    organization_sources: dict[str, float] | None = None,
):
    """Three organizations with real traffic whose widgets 'fail' from 10m on, reported at the
    measured rates; the distinct-source gauges (in all, per organization) at their measured
    values."""
    series = []
    for org, count in (organization_sources or {}).items():
        series.append(
            {
                "series": f'passiton_widget_failure_organization_sources{{instance="e:1",'
                f'organization_id="{org}"}}',
                "values": f"0x40 {count}x40",
            }
        )
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


def organization_sources(exporter, orgs: list[str] = ORGS) -> dict[str, float]:
    return {
        org: exporter.sample(
            f'passiton_widget_failure_organization_sources{{organization_id="{org}"}}'
        )
        for org in orgs
    }


def fired(tmp_path: Path, name: str, series: list[dict]) -> dict[str, bool]:
    """Which of the two alerts promtool sees firing at 18m, and whether any alert of severity
    critical or high does (``PAGES``); a test per question and outcome."""
    outcome = {}
    questions = {
        "WidgetPlatformOutage": 'alertname="WidgetPlatformOutage"',
        "WidgetFailureFloodFromFewSources": 'alertname="WidgetFailureFloodFromFewSources"',
        PAGES: 'severity=~"critical|high"',
    }
    for alert, matcher in questions.items():
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
                                "expr": f"clamp_max(count(ALERTS{{{matcher},{FIRING}}}), 1)",
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
    assert set(outcome) == set(questions)
    return outcome


def test_a_flood_from_few_clients_is_a_security_alert_not_a_page(tmp_path: Path):
    env = {"EXPORTER_TRUSTED_PROXIES": "127.0.0.1", "EXPORTER_BEACON_RATE_PER_MINUTE": "1000"}
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        flood(exporter, http, ["203.0.113.7", "203.0.113.8"], beacons=60)
        sources = exporter.sample("passiton_widget_failure_distinct_sources")
        reports = exporter.sample('passiton_widget_error_reports_total{channel="beacon"}')
        per_org = organization_sources(exporter)
    assert round(sources) == 2
    assert reports == 60 * 20
    assert per_org == {"org-a": 2, "org-b": 2, "org-c": 2}
    # the measured flood, sustained: its reports per 15 s step, from the measured sources
    outcome = fired(tmp_path, "few-clients", promtool_case(sources, reports / 4, 0, per_org))
    assert outcome == {
        "WidgetPlatformOutage": False,
        "WidgetFailureFloodFromFewSources": True,
        PAGES: False,
    }


def test_the_same_failures_from_many_clients_or_the_events_api_still_page(tmp_path: Path):
    env = {"EXPORTER_TRUSTED_PROXIES": "127.0.0.1", "EXPORTER_BEACON_RATE_PER_MINUTE": "1000"}
    clients = [f"198.51.100.{i}" for i in range(1, 41)]
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        flood(exporter, http, clients, beacons=80)
        sources = exporter.sample("passiton_widget_failure_distinct_sources")
        per_org = organization_sources(exporter)
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
    assert min(per_org.values()) >= 3
    many = fired(tmp_path, "many-clients", promtool_case(sources, 400, 0, per_org))
    assert many == {
        "WidgetPlatformOutage": True,
        "WidgetFailureFloodFromFewSources": False,
        PAGES: True,
    }
    api = fired(tmp_path, "events-api", promtool_case(0, 0, from_api / 4))
    assert api["WidgetPlatformOutage"] is True


def issue18_case(organization_sources: dict[str, float], distinct_sources: float) -> list[dict]:
    """Issue 18's numbers: six active organizations; from 10m the first three's widgets 'fail'
    (2 load errors every 15 s each, against 1 real load), a fourth has ordinary donors' script
    errors; the sources the exporter counted per organization and in all."""
    series = []
    for org in ["org-a", "org-b", "org-c", "org-d", "org-e", "org-f"]:
        labels = f'instance="e:1",organization_id="{org}",widget_id="w"'
        series.append({"series": f"passiton_widget_loads_total{{{labels}}}", "values": "0+1x80"})
    for org in ORGS:
        labels = f'instance="e:1",organization_id="{org}",widget_id="w"'
        series.append(
            {
                "series": f'passiton_widget_errors_total{{{labels},kind="load"}}',
                "values": "0x40 2+2x40",
            }
        )
    series.append(
        {
            "series": 'passiton_widget_errors_total{instance="e:1",organization_id="org-d",'
            'widget_id="w",kind="script"}',
            "values": "0x40 1+1x40",
        }
    )
    for org, count in organization_sources.items():
        series.append(
            {
                "series": f'passiton_widget_failure_organization_sources{{instance="e:1",'
                f'organization_id="{org}"}}',
                "values": f"0x40 {count}x40",
            }
        )
    series.append(
        {
            "series": 'passiton_widget_error_reports_total{instance="e:1",channel="beacon"}',
            "values": "0x40 7+7x40",
        }
    )
    series.append(
        {
            "series": 'passiton_widget_failure_distinct_sources{instance="e:1"}',
            "values": f"0x40 {distinct_sources}x40",
        }
    )
    return series


def test_one_address_faking_three_organizations_among_real_donors_does_not_page(tmp_path: Path):
    """Issue 18: one address holding three organizations' widget keys sends load errors, well
    under the per-client limit, while ten ordinary donors report script errors for a fourth
    organization. Eleven clients in all, but one per failing organization: the exporter counts
    the sources per organization, the outage needs three of them per failing organization, and
    the flood alert fires instead."""
    env = {"EXPORTER_TRUSTED_PROXIES": "127.0.0.1"}
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        for i in range(24):
            org = ORGS[i % len(ORGS)]
            response = http.post(
                f"{exporter.public}/v1/beacon",
                params={"key": beacon_key(BEACON_SECRET, org, "w")},
                json=[{"type": "widget.load_error", "organization_id": org, "widget_id": "w"}] * 3,
                headers={"Origin": ORIGIN, "X-Forwarded-For": "203.0.113.9"},
            )
            assert response.status_code == 202, response.text
        for donor in range(10):
            response = http.post(
                f"{exporter.public}/v1/beacon",
                params={"key": beacon_key(BEACON_SECRET, "org-d", "w")},
                json=[
                    {"type": "widget.script_error", "organization_id": "org-d", "widget_id": "w"}
                ],
                headers={"Origin": ORIGIN, "X-Forwarded-For": f"198.51.100.{donor + 1}"},
            )
            assert response.status_code == 202, response.text
        per_org = organization_sources(exporter, [*ORGS, "org-d"])
        distinct = exporter.sample("passiton_widget_failure_distinct_sources")
    assert per_org == {"org-a": 1, "org-b": 1, "org-c": 1, "org-d": 10}
    # what the old rule read: enough clients in all (the sketch may put two of the 11 in one
    # register, about one run in a hundred)
    assert round(distinct) in (10, 11)
    outcome = fired(tmp_path, "issue-18", issue18_case(per_org, distinct))
    assert outcome == {
        "WidgetPlatformOutage": False,
        "WidgetFailureFloodFromFewSources": True,
        PAGES: False,
    }
    # the same failures reported by three donors per organization are an outage
    corroborated = {**per_org, "org-a": 3, "org-b": 3, "org-c": 3}
    real = fired(tmp_path, "issue-18-real", issue18_case(corroborated, distinct))
    assert real == {
        "WidgetPlatformOutage": True,
        "WidgetFailureFloodFromFewSources": False,
        PAGES: True,
    }
