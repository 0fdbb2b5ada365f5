"""A payment failure burst, end to end: exporter API → Prometheus rule → Alertmanager → bridge →
fake Slack and PagerDuty and the payment_alerts table; then the resolve."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.harness import (
    BackgroundTraffic,
    UpStack,
    pagerduty_events,
    post_events,
    query,
    wait_until,
)
from tests.fakes import FakePagerDuty, FakeSlack

pytestmark = pytest.mark.e2e

ORG = "org-e2e-burst"
ALERT = "PaymentFailureRatioHigh"


class Traffic(BackgroundTraffic):
    """A batch of payment events every half second; ``failing`` says whether ours fail."""

    def __init__(self, exporter_url: str) -> None:
        super().__init__(exporter_url)
        self.failing = True

    def batch(self) -> list[dict[str, Any]]:
        # the rest of the platform pays normally: this is one organization's problem, not the
        # platform-wide failure whose alert would inhibit the per-organization one
        healthy = [
            {"type": "payment.succeeded", "organization_id": f"org-e2e-healthy-{i}", "amount": 1000}
            for i in range(5)
        ] * 2
        return healthy + self._ours()

    def _ours(self) -> list[dict[str, Any]]:
        if self.failing:
            failure = {
                "type": "payment.failed",
                "organization_id": ORG,
                "amount": 2500,
                "currency": "usd",
                "error": "An error occurred while processing your card.",
                "failure_code": "processing_error",
            }
            return [failure, failure, {"type": "payment.timeout", "organization_id": ORG}]
        success = {"type": "payment.succeeded", "organization_id": ORG, "amount": 2500}
        return [success] * 10


# about 190 s of the production rules' own timings (fire, escalate, resolve): 300 s left too
# little on a loaded machine
@pytest.mark.timeout(480)
def test_payment_failure_burst_notifies_slack_and_pagerduty_stores_and_resolves(
    up_stack: UpStack, slack: FakeSlack, pagerduty: FakePagerDuty, e2e_database: str
) -> None:
    exporter = up_stack.exporter_url
    # the payment series exist before the burst, so rate() sees all of it
    traffic = Traffic(exporter)
    traffic.failing = False
    post_events(exporter, traffic.batch())

    def ours(event: dict[str, Any]) -> bool:
        details = str(event.get("payload", {}).get("custom_details", "")) + str(event)
        return ORG in details

    traffic.failing = True
    with traffic:
        # One page per incident: the organization's first critical payment alert opens it
        # (PaymentFailureRatioHigh, or PaymentConsecutiveFailures when that one is faster).
        triggers = wait_until(
            lambda: [
                e for e in pagerduty_events(pagerduty.events, "trigger", "Payment") if ours(e)
            ],
            120,
            "the critical payment incident at PagerDuty",
            interval=0.5,
            on_timeout=up_stack.diagnostics,
        )
        messages = wait_until(
            lambda: [m for m in slack.messages if ORG in str(m)],
            30,
            "the payment incident at Slack",
        )
        rows = wait_until(
            lambda: query(
                e2e_database,
                "SELECT * FROM payment_alerts WHERE alertname = $1 AND organization_id = $2",
                ALERT,
                ORG,
            ),
            60,
            f"{ALERT} to be stored",
        )
        assert [(r["status"], r["severity"]) for r in rows] == [("firing", "critical")]
        # every payment alert of the organization is in the one incident that paged
        incidents = query(
            e2e_database,
            "SELECT DISTINCT incident_id FROM payment_alerts WHERE organization_id = $1",
            ORG,
        )
        assert len(incidents) == 1, incidents
        assert incidents[0]["incident_id"] is not None
        labels = rows[0]["labels"]
        assert json.loads(labels)["category"] == "payment"
        assert "payment" in str(messages[0]).lower()
        assert len(triggers) == 1
        dedup_key = triggers[0]["dedup_key"]
        assert pagerduty.incidents[dedup_key] == "triggered"

        traffic.failing = False  # the burst stops: successes only
        # resolved once the one-minute ratio is under one half for the rule's keep_firing_for (2m)
        rows = wait_until(
            lambda: [
                r
                for r in query(
                    e2e_database,
                    "SELECT status, ends_at FROM payment_alerts WHERE alertname = $1 "
                    "AND organization_id = $2",
                    ALERT,
                    ORG,
                )
                if r["status"] == "resolved"
            ],
            240,
            "the stored alert to be resolved",
            interval=0.5,
            on_timeout=up_stack.diagnostics,
        )
        assert traffic.error is None
    # The page belongs to the incident, not to one alert: PagerDuty's incident resolves with
    # the organization's payment incident, when its last alert resolves (slower tiers such as
    # the processing-error spike, keep_firing_for 10m, may still hold it open), never before.
    still_open = query(
        e2e_database,
        "SELECT alertname, severity FROM payment_alerts WHERE incident_id = $1"
        " AND status = 'firing'",
        incidents[0]["incident_id"],
    )
    resolves = [
        e
        for e in pagerduty.events
        if e["event_action"] == "resolve" and e["dedup_key"] == dedup_key
    ]
    if still_open:
        assert resolves == [], still_open
        assert pagerduty.incidents[dedup_key] == "triggered"
    else:
        resolves = wait_until(
            lambda: [
                e
                for e in pagerduty.events
                if e["event_action"] == "resolve" and e["dedup_key"] == dedup_key
            ],
            30,
            "the resolve at PagerDuty",
        )
        assert len(resolves) == 1
        assert pagerduty.incidents[dedup_key] == "resolved"
    assert rows[0]["ends_at"] is not None
