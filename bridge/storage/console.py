"""What the alert console reads and writes: its row types and ``ConsoleStore``, the typed
interface it reaches storage through (``Storage.console()`` gives ``console_queries.py``'s).

Alerts are addressed by (table, id); an alert *instance* is (fingerprint, starts_at), which is
what acknowledgements and the audit trail refer to, so a re-fire is a new instance.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bridge.oncall.schedule import Override
from bridge.storage.reconcile import ReconciledRow, ReconcileStatus, Suppression
from bridge.storage.types import ALERT_TABLES, ConfigurationRow, PreferenceRow

ROLES = ("viewer", "responder", "admin")
STATUSES = ("firing", "resolved")
# The organizations a user may see: None is every one; a tuple limits the user to incidents
# touching them and, within those, to their alerts (not those of no organization).
Scope = tuple[str, ...] | None


@dataclass(frozen=True)
class ConsoleUser:
    username: str
    password_hash: str
    role: str
    session_epoch: int
    organizations: Scope = None
    oidc: bool = False  # signed in by the OpenID provider (no password; migration 0014)

    def sees(self, organization_id: str | None) -> bool:
        return self.organizations is None or organization_id in self.organizations


@dataclass(frozen=True)
class AlertRow:
    table: str
    id: int
    fingerprint: str
    alertname: str
    status: str
    severity: str
    organization_id: str | None
    summary: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    updated_at: datetime
    incident_id: int | None = None  # None: stored before incidents existed (migration 0004)

    @property
    def category(self) -> str:
        return self.table.removesuffix("_alerts")

    @property
    def instance(self) -> tuple[str, datetime]:
        return (self.fingerprint, self.starts_at)


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    channel: str
    state: str  # pending | sent | dead
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    finished_at: datetime | None
    last_error: str | None
    message_status: str
    notice: str
    starts_at: dict[str, datetime]  # fingerprint -> starts_at of the alerts it carries

    def carries(self, fingerprint: str, starts_at: datetime) -> bool:
        return self.starts_at.get(fingerprint) == starts_at

    @property
    def display_state(self) -> str:
        """sent, pending (first attempt not made yet), retrying, dead."""
        if self.state == "pending" and self.attempts > 0:
            return "retrying"
        return self.state


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    attempt: int
    result: str  # sent | retry | dead | requeued
    error: str | None
    at: datetime


@dataclass(frozen=True)
class Acknowledgement:
    fingerprint: str
    starts_at: datetime
    alert_table: str
    severity: str
    username: str
    note: str
    created_at: datetime
    expires_at: datetime | None = None  # None: until the alert resolves

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    username: str
    action: str
    fingerprint: str | None = None
    starts_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryFilter:
    categories: tuple[str, ...] = ()
    severity: str = ""
    organization_id: str = ""
    alertname: str = ""
    status: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    within: Scope = None  # the viewer's organizations (None: every one)

    def tables(self) -> tuple[str, ...]:
        if not self.categories:
            return ALERT_TABLES
        return tuple(t for t in ALERT_TABLES if t.removesuffix("_alerts") in self.categories)


@dataclass(frozen=True)
class Cursor:
    """Keyset position in the history, ordered by (starts_at, table, id) descending."""

    starts_at: datetime
    table: str
    id: int

    def encode(self) -> str:
        raw = f"{self.starts_at.isoformat()}|{self.table}|{self.id}"
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode()
            when, table, ident = raw.split("|")
            cursor = cls(datetime.fromisoformat(when), table, int(ident))
            if cursor.starts_at.tzinfo is not None:
                # an offset can push year 1 or 9999 out of range (OverflowError)
                cursor = cls(cursor.starts_at.astimezone(UTC), table, cursor.id)
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError):
            raise ValueError("invalid page cursor") from None
        if table not in ALERT_TABLES or cursor.starts_at.tzinfo is None:
            raise ValueError("invalid page cursor")
        if not -(2**63) <= cursor.id < 2**63:
            raise ValueError("invalid page cursor")
        return cursor

    def condition(self, table: str) -> tuple[str, bool]:
        """For one table: the comparison on starts_at and whether ids must be below self.id
        at equal starts_at (same table); tables sort by name after starts_at."""
        if table == self.table:
            return "same", True
        return ("le" if table < self.table else "lt"), False


@dataclass(frozen=True)
class ReviewRow:
    alertname: str
    organization_id: str | None
    fired: int
    self_resolved: int  # resolved within the self-resolve window, never acknowledged
    refires: int  # fires of a label set that had fired before in the period (flapping)
    ack_median: float | None
    ack_p90: float | None
    resolve_median: float | None
    resolve_p90: float | None


@dataclass(frozen=True)
class Review:
    rows: list[ReviewRow]
    pages: dict[str, int]  # channel -> deliveries sent in the period
    daily: list[tuple[str, int]]  # (YYYY-MM-DD, fires)
    noisiest: list[tuple[str, int]]  # (organization, fires)


@dataclass(frozen=True)
class ConsoleIncident:
    """An incident as the console shows it (``organizations``: every one it touches)."""

    id: int
    title: str
    severity: str
    status: str  # firing | acknowledged | resolved
    probable_cause: str
    organizations: list[str]
    alert_count: int
    opened_at: datetime
    last_alert_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    ack_expires_at: datetime | None = None  # the acknowledgement's chosen end
    snoozed_until: datetime | None = None  # off the Now page, its pages held, until then
    snoozed_by: str | None = None
    assignee: str | None = None  # a console user's name

    def snoozed(self, now: datetime) -> bool:
        """Snoozed at ``now`` (a resolved incident is not: it shows as resolved)."""
        return (
            self.status != "resolved"
            and self.snoozed_until is not None
            and self.snoozed_until > now
        )

    def within(self, scope: Scope) -> bool:
        """It touches one of the scope's organizations (None: every one)."""
        return scope is None or any(o in scope for o in self.organizations)


@dataclass(frozen=True)
class Skip:
    """Why an alert event was not sent on a channel ('*': any), as the ingest decided it."""

    status: str  # the event: firing or resolved
    channel: str
    reason: str
    until: datetime | None
    at: datetime


@dataclass(frozen=True)
class IncidentEvent:
    """One entry of an incident's own timeline (``incident_events``)."""

    at: datetime
    kind: str  # opened, alert_joined, alert_resolved, paged, severity_raised, acknowledged, ...
    detail: dict[str, Any]


@dataclass(frozen=True)
class IncidentAck:
    """What acknowledging an incident did."""

    status: str  # the incident's status before: firing, acknowledged, resolved
    changed: bool  # it moved from firing to acknowledged
    alerts: int  # its firing alerts acknowledged now (not before)


@dataclass(frozen=True)
class EscalationRow:
    """Where an incident's escalation stands (``escalations``)."""

    policy_id: str
    state: str  # active | acknowledged | done
    step: int  # the next step to send (0-based)
    round: int  # walks of the steps so far (0: the first)
    next_at: datetime | None  # active: the next step's time; acknowledged: when it expires
    started_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewOverride:
    """An on-call override to store: ``person_id`` covers ``replaces``' time (or is on call in
    addition, ``replaces`` None) on the schedule in [start, end)."""

    schedule_id: str
    person_id: str
    replaces: str | None
    start: datetime
    end: datetime
    reason: str = ""


class ConsoleStore(Protocol):
    """The console's queries; every write of an action and its audit entry commit together."""

    async def upsert_user(
        self,
        username: str,
        password_hash: str,
        role: str,
        now: datetime,
        organizations: Scope = None,
    ) -> None:
        """Create the user or replace their password, role and organizations (and void their
        sessions); a user of the OpenID provider becomes a local one."""

    async def get_user(self, username: str) -> ConsoleUser | None: ...

    async def list_users(self) -> list[ConsoleUser]: ...

    async def end_sessions(self, username: str, audit: AuditEntry) -> None:
        """Bump the user's session epoch (logout everywhere)."""

    async def firing(self, limit: int) -> list[AlertRow]:
        """Firing alerts of every table, newest first."""

    async def alert(self, table: str, id: int) -> AlertRow | None: ...

    async def deliveries(self, fingerprints: Sequence[str]) -> list[DeliveryRow]:
        """Outbox rows carrying any of these fingerprints (any instance), oldest first."""

    async def attempts(self, delivery_ids: Sequence[int]) -> list[Attempt]:
        """Each recorded attempt of these deliveries, in order."""

    async def acknowledgements(
        self, instances: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Acknowledgement]: ...

    async def acknowledge(self, ack: Acknowledgement, audit: AuditEntry) -> bool:
        """Store the acknowledgement (False when the instance was acknowledged already and it
        has not ended)."""

    async def unacknowledge(self, fingerprint: str, starts_at: datetime, audit: AuditEntry) -> bool:
        """Forget the instance's acknowledgement and audit it (False when there was none)."""

    async def skips(self, fingerprint: str, starts_at: datetime) -> list[Skip]:
        """Why the instance's events were not sent on channels, as decided, oldest first."""

    async def audit(self, entry: AuditEntry) -> None: ...

    async def audit_for(self, fingerprint: str, starts_at: datetime) -> list[AuditEntry]: ...

    async def recent_audit(self, limit: int) -> list[AuditEntry]: ...

    async def retry_dead(self, delivery_id: int, now: datetime, audit: AuditEntry) -> bool:
        """Put a dead letter back in the queue, due now; False unless it was dead."""

    async def history(
        self, where: HistoryFilter, cursor: Cursor | None, limit: int
    ) -> list[AlertRow]:
        """Up to limit alerts after the cursor, ordered by (starts_at, table, id) descending."""

    async def organizations(self, since: datetime) -> list[str]:
        """Organizations with preferences, configurations or alerts started since then."""

    async def preference(self, organization_id: str) -> PreferenceRow | None: ...

    async def configurations(self, organization_id: str) -> list[ConfigurationRow]: ...

    async def save_preference(
        self, row: PreferenceRow, now: datetime, audit: AuditEntry
    ) -> None: ...

    async def save_configuration(
        self, row: ConfigurationRow, now: datetime, audit: AuditEntry
    ) -> None: ...

    async def delete_configuration(
        self, organization_id: str, alertname: str, audit: AuditEntry
    ) -> None: ...

    async def review(
        self,
        since: datetime,
        until: datetime,
        self_resolve_seconds: float,
        limit: int,
        within: Scope = None,
    ) -> Review:
        """Fire counts, response times and noise per alert name and organization (of the
        scope's organizations; pages: the deliveries that carried one of their alerts)."""

    async def suppressions(
        self, instances: Sequence[tuple[str, datetime]]
    ) -> dict[tuple[str, datetime], Suppression]:
        """What Alertmanager said of these instances (silences, inhibitions, vanished)."""

    async def recently_reconciled(self, since: datetime, limit: int) -> list[ReconciledRow]:
        """Alerts the reconciler resolved since then (vanished, resolved while silenced)."""

    async def reconcile_status(self) -> ReconcileStatus:
        """When the reconciler last read Alertmanager, and since when it cannot."""

    # incidents (console_incidents.py)

    async def incidents(
        self, resolved_since: datetime, scope: Scope, limit: int
    ) -> list[ConsoleIncident]:
        """The open incidents and those resolved since then that touch the scope, most
        recently active first."""

    async def incident(self, incident_id: int, scope: Scope) -> ConsoleIncident | None:
        """The incident, if it touches the scope."""

    async def surviving_incident(self, incident_id: int) -> int | None:
        """The incident that carries on for this one: itself, or the one it was merged into
        (following merges of merges); None when there is no such incident."""

    async def incident_alerts(self, incident_ids: Sequence[int], scope: Scope) -> list[AlertRow]:
        """The alerts of these incidents within the scope, oldest first."""

    async def incident_events(self, incident_id: int) -> list[IncidentEvent]:
        """The incident's own timeline, oldest first."""

    async def audit_of(self, instances: Sequence[tuple[str, datetime]]) -> list[AuditEntry]:
        """The audit entries of these alert instances, oldest first."""

    async def acknowledge_incident(
        self,
        incident_id: int,
        scope: Scope,
        note: str,
        audit: AuditEntry,
        *,
        set_status: bool = True,
    ) -> IncidentAck | None:
        """Acknowledge the incident (unless resolved) and its firing alerts within the scope,
        by ``audit.username`` at ``audit.at``: one acknowledgement and audit entry per alert,
        the incident's status and ``acknowledged_at`` and an ``incident_events`` entry (unless
        not ``set_status``: the bridge's ``IncidentActions`` does those); one transaction.
        None when no incident in the scope has that id."""

    # on call (console_oncall.py)

    async def escalation(self, incident_id: int) -> EscalationRow | None:
        """The incident's escalation, if a route sent it to a policy."""

    async def oncall_overrides(self, start: datetime, end: datetime) -> list[Override]:
        """The on-call overrides overlapping [start, end), by id."""

    async def add_overrides(
        self, rows: Sequence[NewOverride], created_by: str, audit: AuditEntry
    ) -> list[Override]:
        """Store the overrides (a swap's two covers) and the audit entry: all or none."""

    async def remove_override(self, override_id: int, audit: AuditEntry) -> Override | None:
        """Delete the override and audit it (with what it was); None when there is none."""
