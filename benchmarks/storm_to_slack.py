"""A storm of declined payments at one organization → the first Slack message about it.

The stack is ``passiton-monitoring up`` with the repository's own timings (no ``--fast``: scrape
and evaluation 15 s, Alertmanager's group_wait by severity as ``alertmanager/alertmanager.yml``
has it) on a fresh PostgreSQL database, the bridge posting to a local fake Slack (the incoming
webhook) that timestamps each message on arrival. Each trial is a fresh stack:

1. calm traffic (``--baseline`` seconds): ten organizations paying 150 times a second in all
   (``--calm-rate``), and the storm's organization paying 4 times a second with 3 % of its
   payments declined (the series all exist and are scraped before the storm);
2. a random wait of up to one scrape interval, so that trials fall on different phases of the
   scrape and evaluation ticks;
3. the storm: 40 declined payments a second at that organization (each its own ``payment_id``,
   a quarter retried once), its 4 successes a second going on: 91 % of its payments declined;
   the rest of the platform unchanged (a fifth of all payments declined, under the platform
   alert's 30 %, which would otherwise stand for the organization's page; ``--calm-rate 10``
   makes the storm most of the platform's payments, the case where it does).

Reported per trial: seconds from the storm's first event to the first Slack message naming the
organization (or a platform-wide payment alert), which alert it was, and the stages
(Prometheus's ``activeAt`` of the alert, the bridge's ``received_at`` of Alertmanager's
notification, where the start fell on the scrape and evaluation ticks).

Run: ``.venv/bin/python benchmarks/storm_to_slack.py [--trials 3] [--rules-from REF]``; about
three minutes a trial. ``--rules-from REF`` runs the trials on ``prometheus/`` and
``alertmanager/`` of a git revision (``up --config-dir``), with this checkout's services, to
measure before a rule change side by side. Needs the prometheus and prometheus-alertmanager
binaries and PostgreSQL (``PASSITON_TEST_POSTGRES``, default
``postgresql://postgres@127.0.0.1:5432/test``).
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402
    PAGERDUTY_KEY,
    STRIPE_SECRET,
    BackgroundTraffic,
    UpStack,
    fresh_database,
    prometheus_api,
    query,
    wait_until,
)
from tests.fakes import FakePagerDuty, TimedSlack  # noqa: E402

ORG = "org-storm"
CALM = [f"org-calm-{i}" for i in range(10)]
TICK = 0.25  # seconds between batches
SCRAPE_SECONDS = 15.0  # prometheus/prometheus.yml
PLATFORM_ALERT = re.compile(r"Payment[A-Za-z]*Platform")


class Traffic(BackgroundTraffic):
    """Posts a batch of payment events every ``TICK`` seconds; ``storm`` switches the storm on.
    Rates are per second; fractional counts carry over from tick to tick."""

    def __init__(self, exporter_url: str, calm_rate: float) -> None:
        super().__init__(exporter_url, TICK)
        self.calm_rate = calm_rate
        self.storm = False
        self.storm_started: float | None = None
        self._storming = False  # the batch being posted holds the storm
        self._owed: dict[str, float] = {}
        self._retry: list[dict[str, Any]] = []

    def _take(self, what: str, per_second: float) -> int:
        owed = self._owed.get(what, 0.0) + per_second * TICK
        whole = int(owed)
        self._owed[what] = owed - whole
        return whole

    @staticmethod
    def _declined(code: str) -> dict[str, Any]:
        return {
            "type": "payment.failed",
            "organization_id": ORG,
            "amount": 2500,
            "currency": "usd",
            "failure_code": "card_declined",
            "decline_code": code,
            "payment_id": f"pi_{uuid.uuid4().hex[:24]}",
        }

    def batch(self) -> list[dict[str, Any]]:
        self._storming = self.storm
        events: list[dict[str, Any]] = [
            {"type": "payment.succeeded", "organization_id": CALM[i % len(CALM)], "amount": 1000}
            for i in range(self._take("calm", self.calm_rate))
        ]
        events += [
            {"type": "payment.succeeded", "organization_id": ORG, "amount": 2500}
        ] * self._take("ours", 4.0 * 0.97)
        events += [self._declined("insufficient_funds") for _ in range(self._take("usual", 0.12))]
        events += self._retry  # last tick's declined donors trying again (counted once)
        self._retry = []
        if self.storm:
            storm = [self._declined("generic_decline") for _ in range(self._take("storm", 40.0))]
            self._retry = storm[: len(storm) // 4]
            events += storm
        return events

    def posted(self, events: list[dict[str, Any]]) -> None:
        if self._storming and self.storm_started is None:
            self.storm_started = time.time()  # the storm's first events are in


@dataclass
class Trial:
    started: float
    notified: float | None = None
    alert: str = ""
    active_at: float | None = None  # Prometheus: first evaluation where the expression held
    firing_alert: str = ""
    received_at: float | None = None  # the bridge stored Alertmanager's notification
    # phases of the ticks after the storm's start (seconds): to the exporter's next scrape,
    # from it to the recording group's next evaluation, from that to the alert group's
    phases: tuple[float, float, float] | None = None

    @property
    def latency(self) -> float | None:
        return None if self.notified is None else self.notified - self.started


def _timestamp(text: str) -> float:
    """RFC 3339 from Prometheus (nanoseconds) as a POSIX timestamp."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    return datetime.fromisoformat(text).timestamp()


def about_the_storm(text: str) -> bool:
    """A message naming the organization, or a platform-wide payment alert (which stands for
    the organization's when the storm is most of the platform's payments)."""
    return ORG in text or PLATFORM_ALERT.search(text) is not None


def first_message(slack: TimedSlack, after: float) -> tuple[float, str] | None:
    for arrived, text in list(slack.arrivals):
        if arrived >= after and about_the_storm(text):
            return arrived, text
    return None


def alert_named(text: str) -> str:
    names = PLATFORM_ALERT.findall(text) or re.findall(r"Payment[A-Za-z]+", text)
    return names[0] if names else "?"


def tick_phases(stack: UpStack, started: float) -> tuple[float, float, float] | None:
    """Where the storm's start fell on the scrape and evaluation ticks (each repeats every
    15 s at a fixed phase, set by Prometheus from hashes of the target and the group)."""
    targets = prometheus_api(stack.prometheus_url, "targets")["activeTargets"]
    scrapes = [t["lastScrape"] for t in targets if t["labels"].get("job") == "passiton-exporter"]
    groups = {
        g["name"]: _timestamp(g["lastEvaluation"])
        for g in prometheus_api(stack.prometheus_url, "rules")["groups"]
    }
    recording = groups.get("passiton-payment-recording")
    alerting = groups.get("passiton-payment-alerts")
    if not scrapes or recording is None or alerting is None:
        return None
    scrape = _timestamp(scrapes[0])
    return (
        (scrape - started) % SCRAPE_SECONDS,
        (recording - scrape) % SCRAPE_SECONDS,
        (alerting - recording) % SCRAPE_SECONDS,
    )


def fill_stages(stack: UpStack, database_url: str, trial: Trial) -> None:
    alerts = [
        a
        for a in prometheus_api(stack.prometheus_url, "alerts")["alerts"]
        if a["labels"].get("organization_id") == ORG
        or PLATFORM_ALERT.fullmatch(a["labels"]["alertname"])
    ]
    paged = [a for a in alerts if a["labels"]["alertname"] == trial.alert]
    if paged or alerts:
        first = min(paged or alerts, key=lambda a: _timestamp(a["activeAt"]))
        trial.active_at = _timestamp(first["activeAt"])
        labels = first["labels"]
        trial.firing_alert = "/".join(
            v for v in (labels["alertname"], labels.get("evidence", "")) if v
        )
    trial.phases = tick_phases(stack, trial.started)
    rows = query(
        database_url,
        "SELECT min(received_at) AS received FROM payment_alerts WHERE alertname = $1",
        trial.alert,
    )
    if rows and rows[0]["received"] is not None:
        trial.received_at = rows[0]["received"].timestamp()


def run_trial(config_dir: Path | None, baseline: float, timeout: float, calm_rate: float) -> Trial:
    slack, pagerduty = TimedSlack(), FakePagerDuty()
    slack.start_in_thread()
    pagerduty.start_in_thread()
    options = ("--config-dir", str(config_dir)) if config_dir else ("--host", "127.0.0.1")
    try:
        with fresh_database() as database_url, tempfile.TemporaryDirectory() as state:
            env = {
                "DATABASE_URL": database_url,
                "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
                "SLACK_WEBHOOK_URL": slack.webhook_url,
                "PAGERDUTY_INTEGRATION_KEY": PAGERDUTY_KEY,
                "PAGERDUTY_EVENTS_URL": pagerduty.events_url,
            }
            stack = UpStack.start(Path(state), env, *options)  # production timings
            try:
                with Traffic(stack.exporter_url, calm_rate) as traffic:
                    time.sleep(baseline + random.uniform(0.0, SCRAPE_SECONDS))
                    traffic.storm = True
                    wait_until(lambda: traffic.storm_started, 10, "the storm's first batch")
                    assert traffic.storm_started is not None
                    trial = Trial(traffic.storm_started)
                    arrival = wait_until(
                        lambda: first_message(slack, trial.started) or traffic.error,
                        timeout,
                        f"a Slack message about {ORG}",
                        interval=0.05,
                        on_timeout=stack.diagnostics,
                    )
                    if traffic.error is not None:
                        raise traffic.error
                    assert isinstance(arrival, tuple)
                    trial.notified, text = arrival
                    trial.alert = alert_named(text)
                    early = [
                        t for a, t in slack.arrivals if a < trial.started and about_the_storm(t)
                    ]
                    assert not early, f"paged before the storm: {early[0][:300]}"
                fill_stages(stack, database_url, trial)
            finally:
                stack.stop()
    finally:
        slack.stop_thread()
        pagerduty.stop_thread()
    return trial


def checkout_configs(ref: str, into: Path) -> Path:
    """``prometheus/`` and ``alertmanager/`` of git revision ``ref`` under ``into``."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "prometheus", "alertmanager"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--baseline", type=float, default=60.0, help="calm seconds first")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for Slack")
    parser.add_argument(
        "--calm-rate",
        type=float,
        default=150.0,
        help="payments a second of the other organizations (150: the storm is a fifth of all "
        "payments; 10: most of them, and the platform-wide alert fires too)",
    )
    parser.add_argument("--rules-from", metavar="REF", help="prometheus/, alertmanager/ of REF")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as configs:
        config_dir = checkout_configs(args.rules_from, Path(configs)) if args.rules_from else None
        rules = f"rules of {args.rules_from}" if args.rules_from else "this checkout's rules"
        print(f"up (production timings), {rules}; {args.trials} trials", flush=True)
        trials = []
        for i in range(args.trials):
            trial = run_trial(config_dir, args.baseline, args.timeout, args.calm_rate)
            trials.append(trial)
            stages = (
                f"active {trial.active_at - trial.started:6.1f}  "
                f"at the bridge {trial.received_at - trial.started:6.1f}"
                if trial.active_at is not None and trial.received_at is not None
                else "(stages not available)"
            )
            phases = (
                "scrape +{:.1f}, recording +{:.1f}, alerts +{:.1f}".format(*trial.phases)
                if trial.phases
                else ""
            )
            print(
                f"trial {i + 1}: {trial.latency:6.1f}s to Slack ({trial.alert}; active: "
                f"{trial.firing_alert or '?'})  {stages}  ticks after the start: {phases}",
                flush=True,
            )
    latencies = [t.latency for t in trials if t.latency is not None]
    print(
        f"storm to Slack: median {statistics.median(latencies):.1f}s, "
        f"min {min(latencies):.1f}s, max {max(latencies):.1f}s (goal: 90 s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
