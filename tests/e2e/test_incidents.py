"""Incidents end to end (issue 19): alerts posted straight to a real Alertmanager (its API v2, so
the test controls when each fires and resolves; the routing, grouping and inhibitions are
alertmanager/alertmanager.yml's, rendered with 1 s intervals), the real bridge process with
its reconciler every second, fake Slack and PagerDuty.

One stack for the module. Every test uses alert names no other test's incident is related to
(bridge/topology.yml), so they do not join each other's incidents. The bridge runs with a
short incident window (``WINDOW``), which stands in for the 30 minutes of production: "an hour
apart" is "more than ``WINDOW`` apart".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.channels.pagerduty import incident_dedup_key
from passiton_monitoring.stack import (
    ALERTMANAGER_BINARIES,
    FAST,
    Addresses,
    ServiceSpec,
    alertmanager_argv,
    ensure_token_file,
    find_binary,
    python_service_argv,
    render_alertmanager,
    write_yaml,
)
from tests import plain_http
from tests.e2e.conftest import stack_env
from tests.e2e.harness import REPO, ProcessGroup, clean_environ, query, wait_until
from tests.fakes import FakePagerDuty, FakeSlack
from tests.ports import free_port

pytestmark = pytest.mark.e2e

WINDOW = 10  # seconds: BRIDGE_INCIDENT_WINDOW_SECONDS of the module's bridge
TABLES = ("payment_alerts", "widget_alerts", "traffic_alerts", "dashboard_alerts", "system_alerts")
ALERTS_SQL = " UNION ALL ".join(
    "SELECT a.fingerprint, a.alertname, a.organization_id, a.labels::text AS labels, a.status,"  # noqa: S608 - fixed table names
    " a.incident_id, s.silenced_by::text AS silenced_by, s.inhibited_by::text AS inhibited_by,"
    f" s.resolved_reason FROM {t} a LEFT JOIN alert_suppression s"
    " ON s.fingerprint = a.fingerprint AND s.starts_at = a.starts_at WHERE a.alertname = $1"
    for t in TABLES
)


@dataclass
class Stack:
    group: ProcessGroup
    alertmanager: str
    bridge: str
    database_url: str

    def post(self, *alerts: dict[str, Any]) -> None:
        response = plain_http.post(
            f"{self.alertmanager}/api/v2/alerts", json=list(alerts), timeout=10
        )
        assert response.status_code == 200, response.text

    def silence(self, matchers: dict[str, str]) -> str:
        now = datetime.now(UTC)
        response = plain_http.post(
            f"{self.alertmanager}/api/v2/silences",
            json={
                "matchers": [
                    {"name": k, "value": v, "isRegex": False, "isEqual": True}
                    for k, v in matchers.items()
                ],
                "startsAt": _iso(now),
                "endsAt": _iso(now + timedelta(hours=1)),
                "createdBy": "e2e",
                "comment": "maintenance",
            },
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["silenceID"])

    def alerts(self, alertname: str) -> list[dict[str, Any]]:
        """The stored instances of this alert, with what the reconciler recorded of them."""
        return query(self.database_url, ALERTS_SQL, alertname)

    def incident(self, incident_id: int) -> dict[str, Any]:
        [row] = query(self.database_url, "SELECT * FROM incidents WHERE id = $1", incident_id)
        return row

    def timeline(self, incident_id: int) -> list[str]:
        rows = query(
            self.database_url,
            "SELECT kind FROM incident_events WHERE incident_id = $1 ORDER BY id",
            incident_id,
        )
        return [r["kind"] for r in rows]


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, e2e_database: str, channel_env: dict[str, str]
) -> Iterator[Stack]:
    state: Path = tmp_path_factory.mktemp("passiton-incidents")
    host = "127.0.0.1"
    addresses = Addresses(
        exporter=f"{host}:{free_port()}",  # none of these three is started: nothing scrapes,
        bridge=(f"{host}:{free_port()}",),  # the test posts the alerts itself
        prometheus=f"{host}:{free_port()}",
        alertmanager=(f"{host}:{free_port()}",),
        blackbox=f"{host}:{free_port()}",
    )
    alertmanager_url = f"http://{addresses.alertmanager[0]}"
    token, token_file = ensure_token_file(state, "")
    env = {
        **clean_environ(),
        **stack_env(e2e_database, channel_env),
        "BRIDGE_WEBHOOK_TOKEN": token,
        "PASSITON_STATE_DIR": str(state),
        "ALERTMANAGER_URL": alertmanager_url,
        "PROMETHEUS_URL": f"http://{addresses.prometheus}",
        "BRIDGE_INCIDENT_WINDOW_SECONDS": str(WINDOW),
        "BRIDGE_RECONCILE_INTERVAL_SECONDS": "1",
        "BRIDGE_RECONCILE_MIN_UPTIME_SECONDS": "0",  # the test's Alertmanager has just started
        "BRIDGE_DEADMAN_AFTER_SECONDS": "0",  # no Prometheus, no Watchdog: no page for it
        "BRIDGE_ROLLUP_INTERVAL_SECONDS": "0",
    }
    binary = find_binary(ALERTMANAGER_BINARIES)
    assert binary, "the alertmanager binary is required (prometheus-alertmanager)"
    logs = state / "logs"
    group = ProcessGroup()
    try:
        group.start(
            ServiceSpec(
                "bridge",
                python_service_argv("bridge", addresses.bridge[0]),
                f"http://{addresses.bridge[0]}",
                logs / "bridge.log",
                env,
            )
        )
        source = REPO / "alertmanager" / "alertmanager.yml"
        config = write_yaml(
            state / "alertmanager.yml",
            render_alertmanager(source, addresses, token_file, FAST),
            source,
        )
        group.start(
            ServiceSpec(
                "alertmanager",
                alertmanager_argv(
                    binary, config, state / "alertmanager-data", addresses.alertmanager[0]
                ),
                alertmanager_url,
                logs / "alertmanager.log",
            )
        )
        group.wait_ready()
        yield Stack(group, alertmanager_url, f"http://{addresses.bridge[0]}", e2e_database)
    finally:
        group.stop_all()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rule_alert(
    name: str, severity: str, category: str, starts: datetime, **labels: str
) -> dict[str, Any]:
    """An alert with the labels its rule in prometheus/rules/ gives it, firing for an hour."""
    return {
        "labels": {"alertname": name, "severity": severity, "category": category, **labels},
        "annotations": {"summary": f"{name} ({severity})", "description": "posted by the test"},
        "startsAt": _iso(starts),
        "endsAt": _iso(starts + timedelta(hours=1)),
        "generatorURL": "http://prometheus.test/graph",
    }


def resolved(alert: dict[str, Any]) -> dict[str, Any]:
    return {**alert, "endsAt": _iso(datetime.now(UTC))}


def placed(stack: Stack, alertname: str, count: int) -> list[dict[str, Any]] | None:
    """The alert's ``count`` stored instances once each is in an incident."""
    rows = stack.alerts(alertname)
    return rows if len(rows) == count and all(r["incident_id"] for r in rows) else None


def slack_messages(slack: FakeSlack, incident_id: int) -> list[str]:
    return [text for text in map(json.dumps, slack.messages) if f"Incident #{incident_id}:" in text]


def pagerduty_keys(pagerduty: FakePagerDuty, action: str, contains: str) -> list[str]:
    return [
        e["dedup_key"]
        for e in pagerduty.events
        if e["event_action"] == action and contains in json.dumps(e)
    ]


def test_twelve_organizations_and_the_platform_outage_are_one_incident_and_one_page(
    stack: Stack, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    now = datetime.now(UTC)
    orgs = [f"org-widget-{i:02d}" for i in range(12)]
    stack.post(
        *(
            rule_alert("WidgetLoadErrorRatioHigh", "high", "widget", now, organization_id=o)
            for o in orgs
        )
    )
    rows = wait_until(
        lambda: placed(stack, "WidgetLoadErrorRatioHigh", 12),
        30,
        "the twelve organizations' alerts in an incident",
        on_timeout=stack.group.diagnostics,
    )
    [incident_id] = {r["incident_id"] for r in rows}
    # The platform-wide alert a few seconds later (within three minutes in production).
    stack.post(rule_alert("WidgetPlatformOutage", "critical", "widget", datetime.now(UTC)))
    [outage] = wait_until(
        lambda: placed(stack, "WidgetPlatformOutage", 1),
        30,
        "the outage in an incident",
        on_timeout=stack.group.diagnostics,
    )
    assert outage["incident_id"] == incident_id
    # Alertmanager inhibits the organizations' alerts with the outage; the reconciler says so.
    wait_until(
        lambda: all(
            '"alertname": "WidgetPlatformOutage"' in (r["inhibited_by"] or "")
            for r in stack.alerts("WidgetLoadErrorRatioHigh")
        ),
        30,
        "the organizations' alerts stored as inhibited by the outage",
    )
    key = incident_dedup_key(incident_id)
    wait_until(
        lambda: key in pagerduty_keys(pagerduty, "trigger", "Widget"),
        30,
        "PagerDuty's trigger for the incident",
        on_timeout=stack.group.diagnostics,
    )
    # Alertmanager repeats the outage's group every 5 s: once it has, whatever it would have
    # paged again has been stored and sent.
    wait_until(
        lambda: query(
            stack.database_url,
            "SELECT 1 FROM alert_notifications WHERE group_key LIKE '%WidgetPlatformOutage%'"
            " AND new_event_count = 0",
        ),
        30,
        "Alertmanager's repeat of the outage",
    )
    wait_until(lambda: len(slack_messages(slack, incident_id)) >= 2, 10, "the severity update")

    incident = stack.incident(incident_id)
    assert (incident["status"], incident["severity"]) == ("firing", "critical")
    assert incident["alert_count"] == 13
    assert incident["probable_cause"] == "WidgetPlatformOutage"
    assert sorted(incident["organizations"]) == orgs
    # one message when it opened (the twelve together), one when it rose to critical
    opened, rose = slack_messages(slack, incident_id)
    assert "[FIRING:12] [HIGH]" in opened
    assert all(o in opened for o in orgs)
    assert "[CRITICAL]" in rose
    assert [m for m in map(json.dumps, slack.messages) if "Widget" in m] == [opened, rose]
    # one PagerDuty incident: the critical page, keyed by the bridge's incident
    assert pagerduty_keys(pagerduty, "trigger", "Widget") == [key]
    assert stack.timeline(incident_id).count("severity_raised") == 1


def test_a_database_outage_is_one_incident_caused_by_the_database(stack: Stack) -> None:
    now = datetime.now(UTC)
    # What prometheus/rules/ raise when the platform's database fails: its errors, then the
    # API's 5xx ratio and the organizations' failing payments.
    stack.post(rule_alert("DatabaseErrorsHigh", "high", "dashboard", now))
    [cause] = wait_until(
        lambda: placed(stack, "DatabaseErrorsHigh", 1),
        30,
        "the database alert in an incident",
        on_timeout=stack.group.diagnostics,
    )
    later = datetime.now(UTC)
    stack.post(
        rule_alert("ApiErrorRatioHigh", "high", "dashboard", later, route="/api/donations"),
        rule_alert("ApiErrorRatioHigh", "high", "dashboard", later, route="/api/campaigns"),
        rule_alert(
            "PaymentFailureRatioHigh", "critical", "payment", later, organization_id="org-db-1"
        ),
        rule_alert("PaymentFailureRatioHigh", "high", "payment", later, organization_id="org-db-2"),
    )
    effects = [
        *wait_until(lambda: placed(stack, "ApiErrorRatioHigh", 2), 30, "the API alerts"),
        *wait_until(lambda: placed(stack, "PaymentFailureRatioHigh", 2), 30, "the payments"),
    ]
    assert {r["incident_id"] for r in effects} == {cause["incident_id"]}
    incident = stack.incident(cause["incident_id"])
    assert incident["probable_cause"] == "DatabaseErrorsHigh"
    assert (incident["alert_count"], incident["severity"]) == (5, "critical")
    assert incident["title"].startswith("DatabaseErrorsHigh and 4 related alerts")


def test_the_same_alert_after_the_window_opens_a_second_incident(stack: Stack) -> None:
    def bridge_down(instance: str) -> dict[str, Any]:
        return rule_alert(
            "PassItOnBridgeDown",
            "high",
            "system",
            datetime.now(UTC),
            instance=instance,
            job="passiton-bridge",
        )

    stack.post(bridge_down("bridge-a:9821"))
    [first] = wait_until(
        lambda: placed(stack, "PassItOnBridgeDown", 1),
        30,
        "the first alert in an incident",
        on_timeout=stack.group.diagnostics,
    )
    # "An hour later": the first incident's last alert is older than the window.
    wait_until(
        lambda: query(
            stack.database_url,
            "SELECT 1 FROM incidents WHERE id = $1"
            " AND last_alert_at < now() - make_interval(secs => $2)",
            first["incident_id"],
            WINDOW + 1,
        ),
        WINDOW + 30,
        "the incident window to pass",
    )
    stack.post(bridge_down("bridge-b:9821"))
    rows = wait_until(
        lambda: placed(stack, "PassItOnBridgeDown", 2),
        30,
        "the second alert in an incident",
        on_timeout=stack.group.diagnostics,
    )
    assert len({r["incident_id"] for r in rows}) == 2
    for row in rows:
        assert stack.incident(row["incident_id"])["status"] == "firing"


def test_a_silenced_alert_that_resolves_resolves_its_incident_and_pages_its_resolve_once(
    stack: Stack, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    alert = rule_alert("AuthFailureSpike", "critical", "dashboard", datetime.now(UTC))
    stack.post(alert)
    [row] = wait_until(
        lambda: placed(stack, "AuthFailureSpike", 1),
        30,
        "the alert in an incident",
        on_timeout=stack.group.diagnostics,
    )
    incident_id = row["incident_id"]
    key = incident_dedup_key(incident_id)
    wait_until(
        lambda: key in pagerduty_keys(pagerduty, "trigger", "AuthFailureSpike"),
        30,
        "PagerDuty's trigger for the incident",
        on_timeout=stack.group.diagnostics,
    )
    silence = stack.silence({"alertname": "AuthFailureSpike"})
    wait_until(
        lambda: silence in (stack.alerts("AuthFailureSpike")[0]["silenced_by"] or ""),
        30,
        "the alert stored as silenced, with the silence's id",
    )

    # It resolves while silenced: Alertmanager sends no resolve, the reconciler resolves it.
    stack.post(resolved(alert))
    wait_until(
        lambda: stack.incident(incident_id)["status"] == "resolved",
        60,
        "the incident resolved",
        on_timeout=stack.group.diagnostics,
    )
    [row] = stack.alerts("AuthFailureSpike")
    assert (row["status"], row["resolved_reason"]) == ("resolved", "resolved while silenced")
    assert stack.timeline(incident_id)[-3:] == ["alert_resolved", "resolved", "paged_resolved"]
    wait_until(
        lambda: pagerduty.incidents.get(key) == "resolved", 30, "PagerDuty's incident resolved"
    )
    # a few more reconciles (every second) and Alertmanager repeats: nothing more is sent
    resolved_at = stack.incident(incident_id)["resolved_at"]
    wait_until(
        lambda: query(
            stack.database_url,
            "SELECT 1 FROM bridge_state WHERE key = 'reconcile_last_at'"
            " AND value::timestamptz > $1::timestamptz + interval '3 seconds'",
            resolved_at,
        ),
        30,
        "three more reconciles",
    )
    assert pagerduty_keys(pagerduty, "resolve", "").count(key) == 1
    assert len([m for m in slack_messages(slack, incident_id) if "[RESOLVED]" in m]) == 1
