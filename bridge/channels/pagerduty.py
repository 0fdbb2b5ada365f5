"""PagerDuty Events API v2: one event per message of a bridge incident, keyed by the incident
(sha256 of ``incident:<id>``), so it pages once and resolves with the incident. A message of an
alert stored before incidents existed keeps one event per alert, keyed as follows.

``dedup_key`` is ``passiton-`` + sha256(fingerprint + "|" + startsAt in UTC): the bridge's identity
of an alert (the same firing episode always maps to the same key, a later episode of the same
label set opens a new incident rather than re-opening a resolved one, and nothing about the
labels leaks into the key). Triggers and resolves with one key are idempotent at PagerDuty, so a
retried delivery simply re-sends every event of the message.

With ``dedup="group"`` (``PAGERDUTY_DEDUP_KEY=group``) the key is Alertmanager's own: the hex
sha256 of the notification's group key (Alertmanager's pagerduty notifier sends
``DedupKey: key.Hash()``). Alertmanager's ``pagerduty_configs`` on the critical receiver then
pages even while the bridge's database is down (the bridge answers 503 and Alertmanager keeps
retrying it), and when the bridge catches up its trigger lands on the same incident: one page,
not two. The incident resolves when the whole group has, as Alertmanager's does.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from bridge.channels.base import DeliveryError
from bridge.channels.text import alert_headline, one_line, safe_url, truncate
from bridge.model import SEVERITY_RANK, Alert, Message
from bridge.retry import parse_retry_after
from bridge.sanitize import redact
from passiton_common.http_client import async_client

SEVERITY_MAP = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
MAX_SUMMARY = 1024
CLIENT = "PassItOn monitoring"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def dedup_key(alert: Alert) -> str:
    """The stable PagerDuty dedup_key of one alert (fingerprint + startsAt)."""
    started = _utc(alert.starts_at).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    digest = hashlib.sha256(f"{alert.fingerprint}|{started}".encode()).hexdigest()
    return f"passiton-{digest}"


def incident_dedup_key(incident_id: int) -> str:
    """The PagerDuty dedup_key of one bridge incident: sha256 of ``incident:<id>``."""
    return hashlib.sha256(f"incident:{incident_id}".encode()).hexdigest()


def group_dedup_key(group_key: str) -> str:
    """Alertmanager's PagerDuty dedup_key for a notification group: sha256 of the group key."""
    return hashlib.sha256(group_key.encode()).hexdigest()


def render_event(
    alert: Alert, routing_key: str, external_url: str = "", *, key: str | None = None
) -> dict[str, Any]:
    """The Events API v2 body for one alert: ``trigger`` while firing, ``resolve`` after.
    ``key`` overrides the per-alert dedup_key (the group's)."""
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "dedup_key": key or dedup_key(alert),
        "event_action": "resolve" if alert.status == "resolved" else "trigger",
    }
    if alert.status == "resolved":
        return event
    labels = alert.labels
    source = labels.get("instance") or labels.get("job") or "passiton-monitoring"
    payload: dict[str, Any] = {
        "summary": truncate(one_line(alert_headline(alert)), MAX_SUMMARY),
        "source": truncate(source, 255),
        "severity": SEVERITY_MAP[alert.severity],
        "timestamp": _utc(alert.starts_at).isoformat().replace("+00:00", "Z"),
        "component": alert.category,
        "class": alert.alertname or "alert",
        "custom_details": {
            "description": alert.description,
            "labels": dict(labels),
            "annotations": dict(alert.annotations),
            "fingerprint": alert.fingerprint,
        },
    }
    if alert.organization_id:
        payload["group"] = alert.organization_id
    event["payload"] = payload
    links = [
        {"href": url, "text": text}
        for url, text in (
            (alert.generator_url, "Prometheus graph"),
            (alert.runbook_url, "Runbook"),
        )
        if safe_url(url)
    ]
    if links:
        event["links"] = links
    event["client"] = CLIENT
    if safe_url(external_url):
        event["client_url"] = external_url
    return event


class PagerDutyNotifier:
    name = "pagerduty"

    def __init__(
        self,
        integration_key: str,
        events_url: str,
        http: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
        dedup: Literal["alert", "group"] = "alert",
    ) -> None:
        self.integration_key = integration_key
        self.dedup = dedup
        self.events_url = events_url
        self._owns_http = http is None
        self._http = http or async_client(timeout=timeout)
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"PagerDutyNotifier(events_url={self.events_url!r}, dedup={self.dedup!r})"

    def events(
        self, message: Message, routing_key: str
    ) -> list[tuple[Alert | None, dict[str, Any]]]:
        """The events one message sends to one routing key."""
        if self.dedup == "alert" and message.incident_id is not None:
            return self._incident_events(message, routing_key)
        if self.dedup == "alert":
            return [(a, render_event(a, routing_key, message.external_url)) for a in message.alerts]
        # Keyed by the group: a trigger per firing alert (the same incident), one resolve once
        # the whole group is resolved, nothing for an alert resolving inside a firing group.
        key = group_dedup_key(message.group_key)
        group_resolved = (message.group_status or message.status) == "resolved"
        out = [
            (a, render_event(a, routing_key, message.external_url, key=key))
            for a in message.alerts
            if a.status == "firing"
        ]
        resolved = [a for a in message.alerts if a.status == "resolved"]
        if group_resolved and resolved:
            out.append((resolved[0], render_event(resolved[0], routing_key, key=key)))
        return out

    def _incident_events(
        self, message: Message, routing_key: str
    ) -> list[tuple[Alert | None, dict[str, Any]]]:
        """One event per message, keyed by its incident: a trigger (its most severe firing
        alert, summarised by the incident's title) or, once the incident resolved, a resolve."""
        key = incident_dedup_key(message.incident_id or 0)
        if message.action in ("acknowledge", "resolve"):  # acknowledged or resolved by a person
            event = {"routing_key": routing_key, "dedup_key": key, "event_action": message.action}
            return [(message.alerts[0] if message.alerts else None, event)]
        firing = [a for a in message.alerts if a.status == "firing"]
        if not firing:
            return [(message.alerts[0], render_event(message.alerts[0], routing_key, key=key))]
        lead = max(firing, key=lambda a: SEVERITY_RANK[a.severity])
        event = render_event(lead, routing_key, message.external_url, key=key)
        event["payload"]["summary"] = truncate(one_line(message.title), MAX_SUMMARY)
        return [(lead, event)]

    async def notify(self, message: Message) -> None:
        """One event per alert, to each routing key in ``Message.recipients`` or the default."""
        keys = message.recipients or (self.integration_key,)
        failures: list[tuple[Alert | None, DeliveryError]] = []
        total = 0
        for key in keys:
            for alert, event in self.events(message, key):
                total += 1
                try:
                    await self._send(event)
                except DeliveryError as exc:
                    failures.append((alert, exc))
        if not failures:
            return
        summary = f"{total - len(failures)}/{total} events accepted; "
        summary += "; ".join(
            f"{(a.alertname or a.fingerprint) if a else message.action}: {e}" for a, e in failures
        )
        transient = [e for _, e in failures if e.retryable]
        if transient:
            waits = [e.retry_after for e in transient if e.retry_after is not None]
            raise DeliveryError(summary, retryable=True, retry_after=max(waits) if waits else None)
        raise DeliveryError(summary, retryable=False)

    async def _send(self, event: dict[str, Any]) -> None:
        try:
            response = await self._http.post(self.events_url, json=event, timeout=self._timeout)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"timeout: {type(exc).__name__}", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(redact(f"{type(exc).__name__}: {exc}"), retryable=True) from exc
        if 200 <= response.status_code < 300:
            return
        detail = f"HTTP {response.status_code}: {_describe(response)}"
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            raise DeliveryError(detail, retryable=True, retry_after=retry_after)
        raise DeliveryError(detail, retryable=False)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return truncate(one_line(response.text), 200) or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body.get("message") or body.get("status") or "")]
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            parts.append("; ".join(str(e) for e in errors[:5]))
        return truncate(one_line(": ".join(p for p in parts if p)), 300)
    return truncate(one_line(response.text), 200)
