"""`passiton-monitoring up` as a user runs it, then the repository's rules, a silence, an
inhibition and the dead man's switch through the real Prometheus and Alertmanager.

The tests share one stack and run in file order: the last one stops Alertmanager."""

from __future__ import annotations

import os
import signal
from datetime import datetime
from typing import Any

import pytest
import yaml

from tests.e2e.harness import (
    REPO,
    UpStack,
    alertmanager_alerts,
    amtool,
    pagerduty_events,
    prometheus_api,
    query,
    send_bad_stripe_signatures,
    wait_until,
)
from tests.fakes import FakePagerDuty, FakeSlack

pytestmark = pytest.mark.e2e

SIGNATURE_ALERT = "StripeWebhookSignatureFailures"


def test_up_prints_urls_and_channels_and_renders_configs(up_stack: UpStack) -> None:
    text = up_stack.output.text
    for name, url in (
        ("exporter", up_stack.exporter_url),
        ("bridge", up_stack.bridge_url),
        ("prometheus", up_stack.prometheus_url),
        ("alertmanager", up_stack.alertmanager_url),
    ):
        line = next(line for line in text.splitlines() if line.strip().startswith(name + " "))
        assert url in line
        assert line.rstrip().endswith("ready"), line
    assert "Notifications: slack, pagerduty" in text
    assert "PostgreSQL" in text
    assert "passiton_e2e_" in text

    rendered = yaml.safe_load((up_stack.state_dir / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in rendered["scrape_configs"]
    }
    assert targets["passiton-exporter"] == [f"127.0.0.1:{up_stack.ports.exporter}"]
    assert targets["alertmanager"] == [f"127.0.0.1:{up_stack.ports.alertmanager}"]
    assert rendered["rule_files"] == [str(REPO / "prometheus" / "rules" / "*.yml")]
    am = yaml.safe_load((up_stack.state_dir / "alertmanager.yml").read_text())
    webhooks = [w for r in am["receivers"] for w in r.get("webhook_configs", [])]
    assert webhooks
    assert all(w["url"].startswith(up_stack.bridge_url) for w in webhooks)
    # both services run on uvloop (passiton_common/event_loop.py), as `up` starts them
    for service in ("exporter", "bridge"):
        log = (up_stack.state_dir / "logs" / f"{service}.log").read_text()
        assert '"event_loop": "uvloop"' in log, (service, log[:2000])


def test_rules_load_and_every_rule_evaluates_without_error(up_stack: UpStack) -> None:
    prom = up_stack.prometheus_url
    assert prometheus_api(prom, "status/runtimeinfo")["reloadConfigSuccess"] is True

    expected_groups = set()
    for path in sorted((REPO / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            expected_groups.add(group["name"])
    assert expected_groups

    def evaluated() -> list[dict[str, Any]] | None:
        groups = prometheus_api(prom, "rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if {g["name"] for g in groups} != expected_groups:
            return None
        if any(r["health"] == "unknown" for r in rules):
            return None
        return groups

    groups = wait_until(evaluated, 60, "every rule group to be loaded and evaluated")
    failing = [
        (g["name"], r["name"], r["lastError"])
        for g in groups
        for r in g["rules"]
        if r["health"] != "ok" or r.get("lastError")
    ]
    assert failing == []


def test_every_target_is_scraped(up_stack: UpStack) -> None:
    prom = up_stack.prometheus_url

    def all_up() -> list[dict[str, Any]] | None:
        targets = prometheus_api(prom, "targets", state="active")["activeTargets"]
        return targets if targets and all(t["health"] == "up" for t in targets) else None

    targets = wait_until(
        all_up,
        30,
        "every target to be up",
        on_timeout=lambda: str(prometheus_api(prom, "targets", state="active")),
    )
    jobs = {t["labels"]["job"] for t in targets}
    assert {"passiton-exporter", "passiton-bridge", "prometheus", "alertmanager"} <= jobs


def _watchdog_seen(database_url: str) -> datetime | None:
    rows = query(database_url, "SELECT value FROM bridge_state WHERE key = 'watchdog_last_seen'")
    return datetime.fromisoformat(rows[0]["value"]) if rows else None


def _wait_for_watchdog_after(database_url: str, moment: datetime) -> None:
    """Alertmanager delivered a later notification: everything before it was flushed too."""

    def later() -> bool:
        seen = _watchdog_seen(database_url)
        return seen is not None and seen > moment

    wait_until(later, 30, "the Watchdog to reach the bridge again")


def _stored(database_url: str, alertname: str) -> list[dict[str, Any]]:
    return query(
        database_url,
        "SELECT severity, status FROM payment_alerts WHERE alertname = $1",
        alertname,
    )


def test_silence_stops_the_notification_and_inhibition_keeps_the_lower_severity_quiet(
    up_stack: UpStack, slack: FakeSlack, e2e_database: str
) -> None:
    am, prom = up_stack.alertmanager_url, up_stack.prometheus_url
    exporter = up_stack.exporter_public_url
    silence_id = amtool(
        am,
        "silence",
        "add",
        f"alertname={SIGNATURE_ALERT}",
        "--comment=e2e: silenced while we look",
        "--author=e2e",
        "--duration=1h",
    )
    assert silence_id

    # one forged request creates the series, the burst then counts as an increase
    send_bad_stripe_signatures(exporter, 1)
    wait_until(
        lambda: prometheus_api(
            prom, "query", query="passiton_stripe_webhook_signature_failures_total"
        )["result"],
        30,
        "the signature failure counter to be scraped",
    )
    send_bad_stripe_signatures(exporter, 60)

    def both_silenced() -> list[dict[str, Any]] | None:
        alerts = alertmanager_alerts(am, alertname=SIGNATURE_ALERT)
        severities = {a["labels"]["severity"] for a in alerts}
        silenced = all(a["status"]["silencedBy"] == [silence_id] for a in alerts)
        return alerts if severities == {"low", "medium"} and silenced else None

    wait_until(both_silenced, 60, "both signature alerts to be active and silenced")
    _wait_for_watchdog_after(e2e_database, datetime.now().astimezone())
    assert not [m for m in slack.messages if SIGNATURE_ALERT in str(m)]
    assert _stored(e2e_database, SIGNATURE_ALERT) == []

    amtool(am, "silence", "expire", silence_id)
    wait_until(
        lambda: [m for m in slack.messages if SIGNATURE_ALERT in str(m)],
        60,
        "the medium signature alert at Slack once the silence expired",
    )
    low = [
        a
        for a in alertmanager_alerts(am, alertname=SIGNATURE_ALERT)
        if a["labels"]["severity"] == "low"
    ]
    assert len(low) == 1
    assert low[0]["status"]["inhibitedBy"]
    assert not low[0]["status"]["silencedBy"]
    _wait_for_watchdog_after(e2e_database, datetime.now().astimezone())
    assert _stored(e2e_database, SIGNATURE_ALERT) == [{"severity": "medium", "status": "firing"}]
    slack_messages = [m for m in slack.messages if SIGNATURE_ALERT in str(m)]
    assert len(slack_messages) == 1


def test_watchdog_reaches_the_bridge_and_the_dead_mans_switch_notifies_without_alertmanager(
    up_stack: UpStack, slack: FakeSlack, pagerduty: FakePagerDuty, e2e_database: str
) -> None:
    wait_until(lambda: _watchdog_seen(e2e_database), 30, "the Watchdog to reach the bridge")
    assert not pagerduty_events(pagerduty.events, "trigger", "AlertingPipelineDown")

    os.kill(up_stack.service_pid("alertmanager"), signal.SIGTERM)
    wait_until(
        lambda: "alertmanager exited" in up_stack.output.text,
        30,
        "`up` to report that Alertmanager exited",
    )
    triggers = wait_until(
        lambda: pagerduty_events(pagerduty.events, "trigger", "AlertingPipelineDown"),
        60,
        "the dead man's switch to page PagerDuty",
        on_timeout=up_stack.diagnostics,
    )
    assert len(triggers) == 1
    assert [m for m in slack.messages if "Alerting pipeline is down" in str(m)]
