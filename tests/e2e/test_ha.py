"""High availability: two clustered Alertmanagers, each sending to its own bridge replica, both
replicas on one PostgreSQL database. One exporter and one Prometheus sending to both
Alertmanagers. Every config is rendered from the repository's files by
``passiton_monitoring.stack``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from passiton_monitoring.stack import (
    ALERTMANAGER_BINARIES,
    FAST,
    Addresses,
    ServiceSpec,
    alertmanager_argv,
    ensure_token_file,
    exporter_argv,
    find_binary,
    prometheus_argv,
    python_service_argv,
    render_alertmanager,
    render_prometheus,
    write_yaml,
)
from tests.e2e.conftest import stack_env
from tests.e2e.harness import (
    REPO,
    ProcessGroup,
    alertmanager_alerts,
    clean_environ,
    http,
    pagerduty_events,
    prometheus_api,
    query,
    send_bad_stripe_signatures,
    wait_until,
)
from tests.fakes import FakePagerDuty, FakeSlack
from tests.ports import free_port

pytestmark = pytest.mark.e2e

ALERT = "StripeWebhookSignatureFailures"


@dataclass
class HaStack:
    group: ProcessGroup
    addresses: Addresses
    database_url: str
    exporter_public: str

    def url(self, address: str) -> str:
        return f"http://{address}"


@pytest.fixture(scope="module")
def ha_stack(
    tmp_path_factory: pytest.TempPathFactory, e2e_database: str, channel_env: dict[str, str]
) -> Iterator[HaStack]:
    state: Path = tmp_path_factory.mktemp("passiton-ha")
    host = "127.0.0.1"
    addresses = Addresses(
        exporter=f"{host}:{free_port()}",
        bridge=(f"{host}:{free_port()}", f"{host}:{free_port()}"),
        prometheus=f"{host}:{free_port()}",
        alertmanager=(f"{host}:{free_port()}", f"{host}:{free_port()}"),
        blackbox=f"{host}:{free_port()}",  # not started: the uptime probes are simply down
    )
    cluster = (f"{host}:{free_port()}", f"{host}:{free_port()}")
    exporter_public = f"{host}:{free_port()}"
    token, token_file = ensure_token_file(state, "")
    env = {
        **clean_environ(),
        **stack_env(e2e_database, channel_env),
        "BRIDGE_WEBHOOK_TOKEN": token,
        "PASSITON_STATE_DIR": str(state),
    }
    prometheus = find_binary(["prometheus"])
    alertmanager = find_binary(ALERTMANAGER_BINARIES)
    assert prometheus, "the prometheus binary is required (apt-get install prometheus)"
    assert alertmanager, "the alertmanager binary is required (prometheus-alertmanager)"

    group = ProcessGroup()
    try:
        logs = state / "logs"
        group.start(
            ServiceSpec(
                "exporter",
                exporter_argv(addresses.exporter, exporter_public, ""),
                f"http://{addresses.exporter}",
                logs / "exporter.log",
                env,
            )
        )
        for i, address in enumerate(addresses.bridge):
            group.start(
                ServiceSpec(
                    f"bridge-{i}",
                    python_service_argv("bridge", address),
                    f"http://{address}",
                    logs / f"bridge-{i}.log",
                    env,
                )
            )
        # the bridges migrate the same database at start; let the first finish before the second
        group.wait_ready()
        for i, address in enumerate(addresses.alertmanager):
            own = Addresses(
                addresses.exporter,
                (addresses.bridge[i],),
                addresses.prometheus,
                (address,),
                addresses.blackbox,
            )
            source = REPO / "alertmanager" / "alertmanager.yml"
            config = write_yaml(
                state / f"alertmanager-{i}.yml",
                render_alertmanager(source, own, token_file, FAST),
                source,
            )
            group.start(
                ServiceSpec(
                    f"alertmanager-{i}",
                    alertmanager_argv(
                        alertmanager,
                        config,
                        state / f"alertmanager-{i}-data",
                        address,
                        cluster_listen=cluster[i],
                        peers=[cluster[1 - i]],
                        peer_timeout_seconds=1,
                    ),
                    f"http://{address}",
                    logs / f"alertmanager-{i}.log",
                )
            )
        source = REPO / "prometheus" / "prometheus.yml"
        config = write_yaml(
            state / "prometheus.yml", render_prometheus(source, addresses, FAST), source
        )
        group.start(
            ServiceSpec(
                "prometheus",
                prometheus_argv(
                    prometheus, config, state / "prometheus-data", addresses.prometheus, FAST
                ),
                f"http://{addresses.prometheus}",
                logs / "prometheus.log",
            )
        )
        group.wait_ready()
        yield HaStack(group, addresses, e2e_database, exporter_public)
    finally:
        group.stop_all()


def _cluster_size(url: str) -> int:

    status = http().get(f"{url}/api/v2/status", timeout=5).json()
    return len(status["cluster"].get("peers") or [])


def _watchdog_seen(database_url: str) -> datetime | None:
    rows = query(database_url, "SELECT value FROM bridge_state WHERE key = 'watchdog_last_seen'")
    return datetime.fromisoformat(rows[0]["value"]) if rows else None


def test_two_alertmanagers_and_two_bridges_store_and_notify_each_alert_once(
    ha_stack: HaStack, slack: FakeSlack, pagerduty: FakePagerDuty
) -> None:
    am_urls = [ha_stack.url(a) for a in ha_stack.addresses.alertmanager]
    prom = ha_stack.url(ha_stack.addresses.prometheus)
    exporter = ha_stack.url(ha_stack.exporter_public)
    for url in am_urls:
        wait_until(lambda url=url: _cluster_size(url) == 2, 30, "the Alertmanager cluster to form")
    wait_until(
        lambda: len(prometheus_api(prom, "alertmanagers")["activeAlertmanagers"]) == 2,
        30,
        "Prometheus to discover both Alertmanagers",
    )

    send_bad_stripe_signatures(exporter, 1)
    wait_until(
        lambda: prometheus_api(
            prom, "query", query="passiton_stripe_webhook_signature_failures_total"
        )["result"],
        30,
        "the signature failure counter to be scraped",
    )
    send_bad_stripe_signatures(exporter, 60)

    # both Alertmanagers know both alerts (Prometheus sends to each)
    for url in am_urls:
        wait_until(
            lambda url=url: (
                {a["labels"]["severity"] for a in alertmanager_alerts(url, alertname=ALERT)}
                == {"low", "medium"}
            ),
            60,
            "both signature alerts in every Alertmanager",
        )
    first = wait_until(
        lambda: [m for m in slack.messages if ALERT in json.dumps(m)],
        60,
        "the notification at Slack",
        on_timeout=ha_stack.group.diagnostics,
    )
    assert first
    # Let every replica do its part: the other Alertmanager's turn (peer timeout 1 s) and
    # a couple of repeat intervals (5 s), measured by Watchdogs arriving at the bridges.
    after = datetime.now().astimezone() + timedelta(seconds=12)
    wait_until(
        lambda: (_watchdog_seen(ha_stack.database_url) or after) > after,
        60,
        "two more repeat intervals of the Watchdog",
    )

    notified = [
        a
        for a in alertmanager_alerts(am_urls[0], alertname=ALERT)
        if a["status"]["state"] == "active"
    ]
    rows = query(
        ha_stack.database_url,
        "SELECT fingerprint, severity, status FROM payment_alerts WHERE alertname = $1",
        ALERT,
    )
    assert sorted((r["fingerprint"], r["severity"]) for r in rows) == sorted(
        (a["fingerprint"], a["labels"]["severity"]) for a in notified
    )
    assert [m for m in slack.messages if ALERT in json.dumps(m)] == first[:1]
    # the medium tier goes to Slack (the low one is inhibited by it); what an anonymous sender
    # controls never pages PagerDuty (issue 18), however many replicas saw it
    assert [a["labels"]["severity"] for a in notified] == ["medium"]
    assert pagerduty_events(pagerduty.events, "trigger", ALERT) == []
    received = _notifications_per_bridge(ha_stack)
    assert sum(received) >= 1, received


def _notifications_per_bridge(stack: HaStack) -> list[Any]:

    totals = []
    for address in stack.addresses.bridge:
        text = http().get(f"http://{address}/metrics", timeout=5).text
        totals.append(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("passiton_bridge_notifications_received_total")
            )
        )
    return totals
