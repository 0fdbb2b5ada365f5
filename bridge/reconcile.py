"""The reconciler: what Alertmanager knows, in the bridge's tables, every interval.

Alertmanager sends no resolve for an alert that was silenced when it resolved, notifies nobody
of a silence or an inhibition, and a notification it gave up on is lost. So every
``BRIDGE_RECONCILE_INTERVAL_SECONDS`` the bridge reads ``GET /api/v2/alerts`` of every
Alertmanager (``ALERTMANAGER_URL``, comma-separated for an HA cluster), merges them, and:

- a firing alert no Alertmanager has any more is resolved now, through the ingest like a webhook
  resolve (its incident resolves with its last alert, and the incident's resolve is paged once),
  with the reason ``vanished`` or, when it was silenced when last seen, ``resolved while
  silenced`` (only when every Alertmanager answered and has been up for
  ``vanish_after_uptime_seconds``: one that just restarted has no alerts until Prometheus sends
  them again);
- a suppressed one is stored with the silences (and their end) and inhibiting alerts, cleared
  when it is active again;
- an active one the bridge has not stored (a lost notification) is ingested like a webhook
  notification (deduplicated, routed), once it is ``missed_after_seconds`` old (15 minutes by
  default: Alertmanager waits ``group_wait``, up to 5 minutes here, before its first
  notification, and a retried one must not arrive after the reconciler paged for it);
- an active one that left every Alertmanager is resolved only after ``vanish_grace_seconds``
  (45 minutes, longer than the longest ``group_interval``), so that the webhook's resolve
  reaches the channels first; a silenced or inhibited one at once (Alertmanager sends none).

With no Alertmanager answering nothing changes; ``bridge_state`` keeps "unreachable since" and
``passiton_bridge_reconcile_failures`` counts. Every write is idempotent, so several replicas
may reconcile at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
import msgspec

from bridge.deadman import WATCHDOG
from bridge.ingest import IngestResult
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Notification
from bridge.sanitize import redact
from bridge.storage import Storage, StorageUnavailable
from bridge.storage.reconcile import RESOLVED_SILENCED, FiringInstance, SuppressionUpdate
from bridge.webhook import clean_mapping, clean_text, clean_value
from passiton_common.http_client import async_client

log = logging.getLogger(__name__)

GROUP_KEY = "passiton-bridge/reconcile"
RECEIVER = "passiton-bridge"


class _Status(msgspec.Struct, rename="camel"):
    state: Literal["active", "suppressed", "unprocessed"] = "active"
    silenced_by: list[str] = []
    inhibited_by: list[str] = []


class _APIAlert(msgspec.Struct, rename="camel"):
    labels: dict[str, str]
    fingerprint: str
    starts_at: datetime
    annotations: dict[str, str] = {}
    ends_at: datetime | None = None
    generator_url: str = msgspec.field(default="", name="generatorURL")
    status: _Status = msgspec.field(default_factory=_Status)


class _Silence(msgspec.Struct, rename="camel"):
    id: str
    ends_at: datetime


class _Uptime(msgspec.Struct):
    uptime: datetime


_STATE_RANK = {"unprocessed": 0, "suppressed": 1, "active": 2}
_alerts = msgspec.json.Decoder(list[_APIAlert])
_silences = msgspec.json.Decoder(list[_Silence])
_status = msgspec.json.Decoder(_Uptime)


@dataclass
class Seen:
    """One alert as the Alertmanagers that have it say, merged."""

    alert: Alert
    state: str  # active | suppressed | unprocessed
    silenced_by: set[str] = field(default_factory=set)
    inhibited_by: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    reachable: int
    unreachable: int
    vanished: int = 0
    suppressed: int = 0
    missed: int = 0


def instance_key(fingerprint: str, starts_at: datetime) -> tuple[str, int]:
    """An instance's identity across the webhook and the API (which keeps milliseconds)."""
    return fingerprint, int(starts_at.timestamp() * 1000)


def merge(answers: Sequence[list[_APIAlert]]) -> dict[tuple[str, int], Seen]:
    """The alerts of every Alertmanager: suppressed only where every one that has it says so
    (one that would notify it wins), with every silence and inhibiting alert named."""
    merged: dict[tuple[str, int], Seen] = {}
    for answer in answers:
        for raw in answer:
            if not raw.labels.get("alertname") or not raw.fingerprint:
                continue
            starts_at = _utc(raw.starts_at)
            key = instance_key(raw.fingerprint, starts_at)
            seen = merged.get(key)
            if seen is None:
                ends_at = raw.ends_at if raw.ends_at and raw.ends_at.year > 1 else None
                alert = Alert(
                    fingerprint=clean_text(raw.fingerprint),
                    status="firing",
                    labels=clean_mapping(raw.labels),
                    annotations=clean_mapping(raw.annotations),
                    starts_at=starts_at,
                    ends_at=_utc(ends_at) if ends_at else None,
                    generator_url=clean_value(raw.generator_url),
                )
                merged[key] = seen = Seen(alert, raw.status.state)
            else:
                seen.state = max(seen.state, raw.status.state, key=_STATE_RANK.__getitem__)
            seen.silenced_by.update(raw.status.silenced_by)
            seen.inhibited_by.update(raw.status.inhibited_by)
    return merged


class Reconciler:
    def __init__(
        self,
        storage: Storage,
        ingest: Callable[[Notification], Awaitable[IngestResult]],
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        urls: Sequence[str],
        *,
        interval_seconds: float,
        timeout_seconds: float = 5.0,
        missed_after_seconds: float = 900.0,
        vanish_after_uptime_seconds: float = 120.0,
        vanish_grace_seconds: float = 2700.0,
    ) -> None:
        self.storage = storage
        self.ingest = ingest
        self.metrics = metrics
        self.clock = clock
        self.urls = tuple(u.rstrip("/") for u in urls)
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self.missed_after = timedelta(seconds=missed_after_seconds)
        self.vanish_after_uptime = timedelta(seconds=vanish_after_uptime_seconds)
        # An alert that was active when it left Alertmanager gets its resolve by webhook at the
        # group's next flush (up to the longest group_interval, 30 min): the reconciler resolves
        # it only after this grace, so that the resolve still reaches the channels. One that was
        # silenced or inhibited gets no resolve from Alertmanager at all: resolved at once.
        self.vanish_grace = timedelta(seconds=vanish_grace_seconds)
        self._missing_since: dict[tuple[str, int], datetime] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None and self.interval_seconds > 0 and self.urls:
            self._task = asyncio.create_task(self._loop(), name="reconcile")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self.reconcile_once()
            except StorageUnavailable as exc:
                log.warning("reconcile skipped: database unavailable", extra={"error": str(exc)})
            except Exception:
                log.exception("reconcile failed")
            await asyncio.sleep(self.interval_seconds)

    async def reconcile_once(self) -> Outcome:
        now = self.clock()
        async with async_client(timeout=self.timeout_seconds) as http:
            reads = await asyncio.gather(
                *(self._read(http, url) for url in self.urls), return_exceptions=True
            )
            answers = [r for r in reads if not isinstance(r, BaseException)]
            errors = [
                f"{url}: {_reason(r)}"
                for url, r in zip(self.urls, reads, strict=True)
                if isinstance(r, BaseException)
            ]
            for error in errors:
                self.metrics.reconcile_failures.inc()
                log.warning("Alertmanager not read", extra={"error": redact(error)})
            if not answers:
                await self.storage.reconcile_failed(
                    redact("; ".join(errors)), now, unreachable=True
                )
                return Outcome(0, len(errors))
            merged = merge([alerts for alerts, _ in answers])
            silence_ids = {s for seen in merged.values() for s in seen.silenced_by}
            ends = await self._silence_ends(http, silence_ids) if silence_ids else {}
        firing = await self.storage.firing_instances()
        by_key = {instance_key(f.fingerprint, f.starts_at): f for f in firing}
        outcome = Outcome(len(answers), len(errors))
        outcome.suppressed = await self._suppression(merged, by_key, ends, now)
        settled = all(up is not None and now - up >= self.vanish_after_uptime for _, up in answers)
        if not errors and settled:
            missing = {key: f for key, f in by_key.items() if key not in merged}
            self._missing_since = {
                key: self._missing_since.get(key, now) for key in missing
            }  # bounded by the firing alerts
            gone = [
                f
                for key, f in missing.items()
                if f.silenced or now - self._missing_since[key] >= self.vanish_grace
            ]
            moved = await self._resolve(gone, now) if gone else []
            for _, reason in moved:
                kind = "resolved_while_silenced" if reason == RESOLVED_SILENCED else "vanished"
                self.metrics.reconciled.labels(kind=kind).inc()
            outcome.vanished = len(moved)
        outcome.missed = await self._missed(merged, by_key, now)
        if errors:
            await self.storage.reconcile_failed(redact("; ".join(errors)), now, unreachable=False)
        else:
            await self.storage.reconciled(now)
            self.metrics.reconcile_last_success.set(now.timestamp())
        return outcome

    async def _resolve(
        self, gone: Sequence[FiringInstance], now: datetime
    ) -> list[tuple[FiringInstance, str]]:
        """Resolve these instances as a webhook resolve would: through the ingest, so their
        incident resolves with its last alert and its resolve is paged once. The ingest stores
        a resolve once (fingerprint + startsAt + status), so with several replicas only one
        moves each row, and only that one records why."""
        vanished = await self.storage.vanished_alerts(gone)
        if not vanished:
            return []
        alerts = tuple(replace(v.alert, status="resolved", ends_at=now) for v in vanished)
        result = await self.ingest(
            Notification(
                group_key=GROUP_KEY,
                status="resolved",
                receiver=RECEIVER,
                alerts=alerts,
                group_labels={},
                common_labels={},
                external_url=self.urls[0],
            )
        )
        mine = [
            v.instance
            for v in vanished
            if (v.alert.fingerprint, v.alert.starts_at) in result.stored
        ]
        return await self.storage.record_vanished(mine, now)

    async def _read(
        self, http: httpx.AsyncClient, url: str
    ) -> tuple[list[_APIAlert], datetime | None]:
        """One Alertmanager's alerts, and since when it is up (None: not known)."""
        response = await http.get(f"{url}/api/v2/alerts")
        response.raise_for_status()
        alerts = _alerts.decode(response.content)
        up: datetime | None = None
        if self.vanish_after_uptime > timedelta(0):
            status = await http.get(f"{url}/api/v2/status")
            status.raise_for_status()
            up = _utc(_status.decode(status.content).uptime)
        else:
            up = datetime.min.replace(tzinfo=UTC)
        return alerts, up

    async def _silence_ends(self, http: httpx.AsyncClient, ids: set[str]) -> dict[str, datetime]:
        """When each of these silences ends (any Alertmanager that answers; not known: left
        out)."""
        ends: dict[str, datetime] = {}
        for url in self.urls:
            try:
                response = await http.get(f"{url}/api/v2/silences")
                response.raise_for_status()
                for silence in _silences.decode(response.content):
                    if silence.id in ids:
                        ends[silence.id] = _utc(silence.ends_at)
            except (httpx.HTTPError, msgspec.DecodeError) as exc:
                log.info("silences not read", extra={"error": redact(f"{url}: {exc}")})
                continue
            if ids <= ends.keys():
                break
        return ends

    async def _suppression(
        self,
        merged: dict[tuple[str, int], Seen],
        by_key: dict[tuple[str, int], FiringInstance],
        ends: dict[str, datetime],
        now: datetime,
    ) -> int:
        names = {seen.alert.fingerprint: seen.alert.alertname for seen in merged.values()}
        updates = []
        for key, seen in merged.items():
            stored = by_key.get(key)
            if stored is None or seen.state == "unprocessed":
                continue
            suppressed = seen.state == "suppressed"
            silenced = [
                {"id": s, "ends_at": ends[s].isoformat() if s in ends else None}
                for s in sorted(seen.silenced_by if suppressed else ())
            ]
            inhibited = [
                {"fingerprint": f, "alertname": names.get(f, "")}
                for f in sorted(seen.inhibited_by if suppressed else ())
            ]
            updates.append(
                SuppressionUpdate(
                    stored.table, stored.fingerprint, stored.starts_at, silenced, inhibited
                )
            )
        await self.storage.record_suppression(updates, now)
        return sum(1 for u in updates if u.silenced_by or u.inhibited_by)

    async def _missed(
        self,
        merged: dict[tuple[str, int], Seen],
        by_key: dict[tuple[str, int], FiringInstance],
        now: datetime,
    ) -> int:
        """Ingest the active alerts the bridge has not stored (suppressed ones notify nobody)."""
        missed = tuple(
            seen.alert
            for key, seen in sorted(merged.items())
            if key not in by_key
            and seen.state == "active"
            and seen.alert.alertname != WATCHDOG
            and seen.alert.starts_at <= now - self.missed_after
        )
        if not missed:
            return 0
        result = await self.ingest(
            Notification(
                group_key=GROUP_KEY,
                status="firing",
                receiver=RECEIVER,
                alerts=missed,
                group_labels={},
                common_labels={},
                external_url=self.urls[0],
            )
        )
        stored = result.new_events
        if stored:
            self.metrics.reconciled.labels(kind="missed").inc(stored)
            log.info("missed alerts stored from Alertmanager", extra={"count": stored})
        return stored


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, msgspec.DecodeError | msgspec.ValidationError):
        return f"unreadable answer: {exc}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
