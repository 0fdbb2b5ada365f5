"""End-to-end detection latency: first event of a failure burst → notification at (fake) Slack.

The stack is ``passiton-monitoring up --fast`` (the real exporter, bridge, Prometheus and
Alertmanager with this repository's rules; scrape 1 s, evaluation 1 s, group_wait 1 s) on a
fresh PostgreSQL database, with Slack pointed at a local fake that timestamps each message on
arrival. The floor set by the configuration is scrape interval + evaluation interval + the rule's
``for`` + ``group_wait``; what the system adds is the measured latency minus that floor (it can
be negative: the floor assumes the worst phase of the scrape and evaluation ticks). Goal: at most
1 s over the floor. Alerts that read recorded series (``organization:...:rate1m``) wait for one
more evaluation, of the recording group, so a second floor counting that hop is shown as well;
the stages (detection, ``for``, Alertmanager to the bridge, the bridge to Slack) are taken from
Prometheus's ``activeAt`` and the bridge's ``received_at``.

Trials:
- ``StripeWebhookSignatureFailures`` (critical, no ``for``): forged Stripe webhook requests;
  one trial per stack, since its 5-minute window stays above the threshold afterwards.
- ``PaymentFailureRatioHigh`` (critical, ``for: 1m``): one organization's payments start to fail;
  several organizations, started at staggered moments so the trials fall on different phases of
  the scrape and evaluation ticks.

Run: ``.venv/bin/python benchmarks/e2e_latency.py [--payment-trials 4]`` (about two minutes).
Needs the prometheus and prometheus-alertmanager binaries and PostgreSQL
(``PASSITON_TEST_POSTGRES``, default ``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from passiton_monitoring.stack import FAST, parse_duration  # noqa: E402
from tests.e2e.harness import (  # noqa: E402
    PAGERDUTY_KEY,
    STRIPE_SECRET,
    UpStack,
    fresh_database,
    post_events,
    prometheus_api,
    query,
    send_bad_stripe_signatures,
    wait_until,
)
from tests.fakes import FakePagerDuty, TimedSlack  # noqa: E402


def find_rule(alertname: str, severity: str) -> dict:
    for path in sorted((ROOT / "prometheus" / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                labels = rule.get("labels", {})
                if rule.get("alert") == alertname and labels.get("severity") == severity:
                    return rule
    raise SystemExit(f"no rule {alertname} with severity {severity}")


def rule_for_seconds(alertname: str, severity: str) -> float:
    rule = find_rule(alertname, severity)
    return parse_duration(rule["for"]) if "for" in rule else 0.0


def reads_recorded_series(alertname: str) -> bool:
    return bool(
        re.search(r"\b[a-z_]+:[a-z_]+:[a-z0-9_]+", find_rule(alertname, "critical")["expr"])
    )


@dataclass
class Trial:
    alert: str
    label: str
    started: float
    floor: float
    notified: float | None = None
    active_at: float | None = None  # Prometheus: first evaluation where the expression held
    received_at: float | None = None  # the bridge stored the notification from Alertmanager

    @property
    def latency(self) -> float | None:
        return None if self.notified is None else self.notified - self.started


def first_arrival(slack: TimedSlack, *needles: str, after: float) -> float | None:
    for arrived, text in list(slack.arrivals):
        if arrived >= after and all(n in text for n in needles):
            return arrived
    return None


def floor_for(alert: str) -> float:
    return (
        FAST.scrape_seconds
        + FAST.evaluation_seconds
        + rule_for_seconds(alert, "critical")
        + FAST.group_wait_seconds
    )


def signature_trial(stack: UpStack, slack: TimedSlack) -> Trial:
    alert = "StripeWebhookSignatureFailures"
    send_bad_stripe_signatures(stack.exporter_url, 1)  # creates the series
    wait_until(
        lambda: prometheus_api(
            stack.prometheus_url, "query", query="passiton_stripe_webhook_signature_failures_total"
        )["result"],
        30,
        "the signature counter to be scraped",
    )
    time.sleep(1.0)
    trial = Trial(alert, "forged Stripe webhooks", time.time(), floor_for(alert))
    send_bad_stripe_signatures(stack.exporter_url, 60)
    trial.notified = wait_until(
        lambda: first_arrival(slack, alert, "critical", after=trial.started),
        60,
        "the signature alert at Slack",
        interval=0.05,
    )
    return trial


def payment_trials(stack: UpStack, slack: TimedSlack, count: int, stagger: float) -> list[Trial]:
    alert = "PaymentFailureRatioHigh"
    orgs = [f"org-bench-{i}" for i in range(count)]
    post_events(
        stack.exporter_url,
        [
            {"type": t, "organization_id": org}
            for org in orgs
            for t in ("payment.succeeded",) * 20 + ("payment.failed",)
        ]
        + [{"type": "payment.succeeded", "organization_id": f"org-healthy-{i}"} for i in range(10)],
    )
    time.sleep(2.5)  # every series exists and is scraped before any burst starts
    trials: list[Trial] = []
    stop = threading.Event()

    def failures(org: str) -> list[dict]:
        return [
            {"type": "payment.failed", "organization_id": org, "failure_code": "processing_error"}
        ] * 3

    def burst() -> None:
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                # the rest of the platform pays normally, so the platform-wide alert (which
                # would inhibit the per-organization ones) stays quiet
                batch = [
                    {"type": "payment.succeeded", "organization_id": f"org-healthy-{i % 10}"}
                    for i in range(40)
                ]
                batch += [e for t in trials for e in failures(t.label)]
                client.post(f"{stack.exporter_url}/v1/events", json=batch)
                stop.wait(0.25)

    sender = threading.Thread(target=burst, daemon=True)
    sender.start()
    try:
        for org in orgs:
            started = time.time()
            post_events(stack.exporter_url, failures(org))  # the burst's first event
            trials.append(Trial(alert, org, started, floor_for(alert)))
            time.sleep(stagger)
        for trial in trials:
            trial.notified = wait_until(
                lambda trial=trial: first_arrival(slack, alert, trial.label, after=trial.started),
                180,
                f"the payment alert for {trial.label} at Slack",
                interval=0.05,
            )
    finally:
        stop.set()
        sender.join(10)
    return trials


def _timestamp(text: str) -> float:
    """RFC 3339 from Prometheus (nanoseconds) as a POSIX timestamp."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def fill_stages(stack: UpStack, database_url: str, trials: list[Trial]) -> None:
    alerts = prometheus_api(stack.prometheus_url, "alerts")["alerts"]
    for trial in trials:
        org = trial.label if trial.label.startswith("org-") else None
        for alert in alerts:
            labels = alert["labels"]
            if (
                labels.get("alertname") == trial.alert
                and labels.get("severity") == "critical"
                and labels.get("organization_id") == org
            ):
                trial.active_at = _timestamp(alert["activeAt"])
        rows = query(
            database_url,
            "SELECT min(received_at) AS received FROM payment_alerts WHERE alertname = $1 "
            "AND severity = 'critical' AND organization_id IS NOT DISTINCT FROM $2",
            trial.alert,
            org,
        )
        if rows and rows[0]["received"] is not None:
            trial.received_at = rows[0]["received"].timestamp()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payment-trials", type=int, default=4)
    # Slack allows one message a second per webhook and the bridge keeps to it: bursts started
    # less than a second apart would measure that spacing rather than detection.
    parser.add_argument("--stagger", type=float, default=2.3, help="seconds between bursts")
    args = parser.parse_args()

    slack, pagerduty = TimedSlack(), FakePagerDuty()
    slack.start_in_thread()
    pagerduty.start_in_thread()
    with fresh_database() as database_url, tempfile.TemporaryDirectory() as state:
        env = {
            "DATABASE_URL": database_url,
            "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
            "SLACK_WEBHOOK_URL": slack.webhook_url,
            "PAGERDUTY_INTEGRATION_KEY": PAGERDUTY_KEY,
            "PAGERDUTY_EVENTS_URL": pagerduty.events_url,
        }
        stack = UpStack.start(Path(state), env)
        try:
            trials = [signature_trial(stack, slack)]
            trials += payment_trials(stack, slack, args.payment_trials, args.stagger)
            fill_stages(stack, database_url, trials)
        finally:
            stack.stop()
    slack.stop_thread()
    pagerduty.stop_thread()

    print(
        f"floor = scrape {FAST.scrape_seconds}s + evaluation {FAST.evaluation_seconds}s "
        f"+ for + group_wait {FAST.group_wait_seconds}s"
    )
    print("floor+hop adds one evaluation interval when the alert reads recorded series")
    print(
        f"{'alert':<32} {'trial':<24} {'floor':>7} {'latency':>8} {'over':>7} {'ratio':>6} "
        f"{'floor+hop':>9} {'over':>7}"
    )
    overs, overs_hop = [], []
    for t in trials:
        assert t.latency is not None
        over = t.latency - t.floor
        hop = t.floor + (FAST.evaluation_seconds if reads_recorded_series(t.alert) else 0)
        overs.append(over)
        overs_hop.append(t.latency - hop)
        print(
            f"{t.alert:<32} {t.label:<24} {t.floor:>6.1f}s {t.latency:>7.2f}s {over:>+6.2f}s "
            f"{t.latency / t.floor:>6.3f} {hop:>8.1f}s {t.latency - hop:>+6.2f}s"
        )
    print()
    print("where the time goes (seconds): first event -> rule active (scrape + evaluations),")
    print("active -> firing (for), firing -> stored by the bridge (Alertmanager group_wait +")
    print("webhook), stored -> Slack (bridge delivery)")
    for t in trials:
        if t.active_at is None or t.received_at is None or t.notified is None:
            print(f"  {t.label:<24} (stages not available)")
            continue
        for_seconds = rule_for_seconds(t.alert, "critical")
        print(
            f"  {t.label:<24} detect {t.active_at - t.started:5.2f}  for {for_seconds:5.1f}  "
            f"to bridge {t.received_at - t.active_at - for_seconds:5.2f}  "
            f"to Slack {t.notified - t.received_at:5.3f}"
        )
    print(
        f"over the floor: median {statistics.median(overs):+.2f}s, max {max(overs):+.2f}s "
        f"(goal: at most +1 s) -> {'met' if max(overs) <= 1.0 else 'NOT met'}"
    )
    print(
        f"over floor+hop: median {statistics.median(overs_hop):+.2f}s, "
        f"max {max(overs_hop):+.2f}s -> {'met' if max(overs_hop) <= 1.0 else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
