"""Builders and test doubles for the bridge-core tests (webhook, storage, delivery, routing)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.channels.base import DeliveryError
from bridge.config import BridgeConfig
from bridge.model import Message
from bridge.retry import RetryPolicy

TOKEN = "test-webhook-token"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class BridgeClient:
    """aiohttp's test client of a bridge application, with what the tests look at beside it:
    the bridge, its recording channels, its clock (and the console's Alertmanager). HTTP calls
    (``get``, ``post``, ``session`` ...) go to the test client."""

    http: Any
    bridge: Any
    chans: dict[str, Any] = field(default_factory=dict)
    clock: Any = None
    alertmanager: str = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.http, name)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class RecordingNotifier:
    """A channel that records what it is asked to send; ``outcomes`` scripts failures."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.messages: list[Message] = []
        self.outcomes: list[DeliveryError | None] = []
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def notify(self, message: Message) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.outcomes:
            outcome = self.outcomes.pop(0)
            if outcome is not None:
                raise outcome
        self.messages.append(message)


def notifiers(*names: str) -> dict[str, RecordingNotifier]:
    return {n: RecordingNotifier(n) for n in names}


ALL_CHANNELS = ("slack", "email", "pagerduty", "sms")


def make_config(database_url: str, **overrides: Any) -> BridgeConfig:
    config = BridgeConfig(
        database_url=database_url,
        webhook_token=TOKEN,
        deadman_after_seconds=0,
        maintenance_interval_seconds=3600,
        delivery_poll_seconds=0.05,
        retry=RetryPolicy(initial=1.0, max_delay=60.0, max_age_seconds=3600.0, jitter="none"),
        cooldown_seconds=0,
        reconcile_interval_seconds=0,
    )
    return replace(config, **overrides)


def am_alert(
    name: str = "PaymentFailureRateHigh",
    *,
    fingerprint: str = "f00dfeed00000001",
    status: str = "firing",
    severity: str = "high",
    category: str = "payment",
    organization_id: str | None = "org-1",
    starts_at: datetime = T0,
    ends_at: datetime | None = None,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    all_labels = {"alertname": name, "severity": severity, "category": category}
    if organization_id:
        all_labels["organization_id"] = organization_id
    all_labels.update(labels or {})
    return {
        "status": status,
        "labels": all_labels,
        "annotations": {
            "summary": f"{name} summary",
            "description": f"{name} description",
            "runbook_url": "https://docs.example/runbooks#x",
            **(annotations or {}),
        },
        "startsAt": starts_at.isoformat().replace("+00:00", "Z"),
        "endsAt": (
            ends_at.isoformat().replace("+00:00", "Z") if ends_at else "0001-01-01T00:00:00Z"
        ),
        "generatorURL": "http://prometheus.test/graph?g0.expr=up",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], group_key: str = '{}:{alertname="X"}') -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    common = dict(alerts[0]["labels"]) if len(alerts) == 1 else {}
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "bridge",
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.test:9093",
        "alerts": list(alerts),
    }


def body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


ALERT_TABLES_SQL = " UNION ALL ".join(
    f"SELECT '{t}' AS tbl, fingerprint, status FROM {t}"  # noqa: S608
    for t in (
        "payment_alerts",
        "widget_alerts",
        "traffic_alerts",
        "dashboard_alerts",
        "system_alerts",
    )
)


async def alert_rows(storage) -> list[dict[str, Any]]:
    return await storage.query(ALERT_TABLES_SQL)


async def count(storage, table: str, where: str = "") -> int:
    rows = await storage.query(f"SELECT count(*) AS n FROM {table} {where}")  # noqa: S608
    return int(rows[0]["n"])


async def wait_until(predicate, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait for a condition the code under test brings about asynchronously."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)
