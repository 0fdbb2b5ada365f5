"""Builders for alerts and messages used by the channel tests."""

from __future__ import annotations

from datetime import UTC, datetime

from bridge.model import Alert, Message

STARTS_AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def make_alert(
    name: str = "PaymentFailureRateHigh",
    *,
    severity: str = "critical",
    status: str = "firing",
    fingerprint: str = "a1b2c3d4e5f60718",
    summary: str = "Payment failure rate 12% for org-123",
    description: str = "12% of payments failed over the last 5 minutes (threshold 5%).",
    organization_id: str | None = "org-123",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    generator_url: str = "http://prometheus.test:9090/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1",
    runbook_url: str = "https://docs.passiton.test/runbooks#payment-failure-rate-high",
    starts_at: datetime = STARTS_AT,
    ends_at: datetime | None = None,
) -> Alert:
    all_labels = {"alertname": name, "severity": severity, "category": "payment"}
    if organization_id:
        all_labels["organization_id"] = organization_id
    all_labels.update(labels or {})
    all_annotations = {"summary": summary, "description": description}
    if runbook_url:
        all_annotations["runbook_url"] = runbook_url
    all_annotations.update(annotations or {})
    return Alert(
        fingerprint=fingerprint,
        status=status,
        labels=all_labels,
        annotations=all_annotations,
        starts_at=starts_at,
        ends_at=ends_at,
        generator_url=generator_url,
    )


def make_message(
    *alerts: Alert,
    status: str | None = None,
    recipients: tuple[str, ...] = (),
    notice: str = "",
) -> Message:
    if not alerts:
        alerts = (make_alert(),)
    status = status or ("firing" if any(a.status == "firing" for a in alerts) else "resolved")
    return Message(
        group_key='{}:{alertname="PaymentFailureRateHigh"}',
        status=status,
        receiver="passiton-bridge",
        alerts=tuple(alerts),
        common_labels={"alertname": alerts[0].alertname},
        external_url="http://alertmanager.test:9093",
        recipients=recipients,
        notice=notice,
    )
