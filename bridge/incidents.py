"""Incidents: which alerts are one problem, decided in plain Python (no I/O).

An arriving firing alert joins an open incident when it is related to one of the incident's
alerts and the incident had an alert within the window: the same alert name (across
organizations), or a cause and its effect in the causal map (``bridge/topology.yml``, either
direction, transitively). Otherwise it opens a new incident. An incident's severity is the
highest of its alerts', its probable cause the alert furthest upstream in the map (else the
first), and it resolves when its last alert resolves.

Paging follows the incident, not its alerts: ``IncidentBook.pages`` says yes to the first
firing (the incident opens), to a firing above every severity paged so far (it rose) and to the
resolve that resolves the incident; every other alert joins silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bridge.model import SEVERITY_RANK, Alert

DEFAULT_WINDOW = timedelta(minutes=30)
OPEN, ACKNOWLEDGED, RESOLVED = "firing", "acknowledged", "resolved"


class CausalMap(Protocol):
    def related(self, a: str, b: str) -> bool: ...

    def level(self, alertname: str) -> int | None: ...


@dataclass
class Member:
    """One alert (instance) of an incident."""

    fingerprint: str
    starts_at: datetime
    alertname: str
    organization_id: str | None
    severity: str
    status: str
    at: datetime  # when it joined

    @property
    def identity(self) -> tuple[str, datetime]:
        return (self.fingerprint, self.starts_at)


@dataclass
class Incident:
    id: int
    opened_at: datetime
    last_alert_at: datetime
    status: str = OPEN
    paged_severity: str | None = None
    members: list[Member] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)  # common to its alerts
    new: bool = False
    events: list[tuple[str, dict[str, object]]] = field(default_factory=list)  # to be written
    resolved_at: datetime | None = None

    @property
    def is_open(self) -> bool:
        return self.status != RESOLVED

    @property
    def severity(self) -> str:
        ranks = [SEVERITY_RANK[m.severity] for m in self.members] or [0]
        return next(s for s, r in SEVERITY_RANK.items() if r == max(ranks))

    @property
    def alertnames(self) -> list[str]:
        return list(dict.fromkeys(m.alertname for m in self.members))

    @property
    def organizations(self) -> list[str]:
        return sorted({m.organization_id for m in self.members if m.organization_id})

    def probable_cause(self, topology: CausalMap) -> str:
        names = self.alertnames
        levels = [(topology.level(n), i, n) for i, n in enumerate(names)]
        placed = [x for x in levels if x[0] is not None]
        return min(placed)[2] if placed else (names[0] if names else "")

    def title(self, topology: CausalMap) -> str:
        cause = self.probable_cause(topology)
        others = len(self.members) - 1
        title = cause if others <= 0 else f"{cause} and {others} related alert{'s' * (others > 1)}"
        orgs = self.organizations
        if len(orgs) > 1:
            title += f" across {len(orgs)} organizations"
        elif orgs:
            title += f" ({orgs[0]})"
        return title

    def related_to(self, alertname: str, topology: CausalMap) -> bool:
        return any(
            m.alertname == alertname or topology.related(m.alertname, alertname)
            for m in self.members
        )


def choose_incident(
    alertname: str,
    incidents: Iterable[Incident],
    topology: CausalMap,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> Incident | None:
    """The open incident a firing alert of this name joins (the most recently active of those
    it is related to, within ``window`` of their last alert), or None: it opens its own."""
    candidates = [
        i
        for i in incidents
        if i.is_open and now - i.last_alert_at <= window and i.related_to(alertname, topology)
    ]
    return max(candidates, key=lambda i: (i.last_alert_at, -i.id), default=None)


def _common_labels(alerts: Sequence[dict[str, str]]) -> dict[str, str]:
    first, *rest = alerts
    return {k: v for k, v in first.items() if k != "severity" and all(r.get(k) == v for r in rest)}


class IncidentBook:
    """The open incidents during one ingest transaction, and what the transaction changes.

    ``place`` puts each new alert event (in the order they are planned) into its incident;
    ``pages`` says whether that event pages. ``next_id`` hands out the ids of new incidents
    (reserved from the database's sequence beforehand)."""

    def __init__(
        self,
        incidents: Iterable[Incident],
        topology: CausalMap,
        now: datetime,
        next_id: Callable[[], int],
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.incidents = {i.id: i for i in incidents}
        self.topology = topology
        self.now = now
        self.next_id = next_id
        self.window = window
        self.touched: dict[int, Incident] = {}
        self._of: dict[tuple[str, datetime], Incident] = {
            m.identity: i for i in self.incidents.values() for m in i.members
        }

    def place(self, alert: Alert) -> Incident | None:
        """The incident of this alert event; None for a resolve of an alert no open incident
        holds (stored before incidents existed, or its incident is closed)."""
        identity = (alert.fingerprint, alert.starts_at)
        incident = self._of.get(identity)
        if alert.status == RESOLVED:
            if incident is None:
                return None
            member = next(m for m in incident.members if m.identity == identity)
            member.status = RESOLVED
            self._touch(incident, "alert_resolved", alert)
            if all(m.status == RESOLVED for m in incident.members):
                incident.status, incident.resolved_at = RESOLVED, self.now
                incident.events.append(("resolved", {}))
            return incident
        if incident is not None:  # the same instance again (released from a cooldown hold)
            return incident
        incident = choose_incident(
            alert.alertname, self.incidents.values(), self.topology, self.now, self.window
        )
        if incident is None:
            incident = Incident(self.next_id(), self.now, self.now, new=True)
            self.incidents[incident.id] = incident
            incident.events.append(("opened", {"alertname": alert.alertname}))
            incident.labels = dict(alert.labels)
        incident.members.append(
            Member(
                alert.fingerprint,
                alert.starts_at,
                alert.alertname,
                alert.organization_id,
                alert.severity,
                alert.status,
                self.now,
            )
        )
        incident.labels = _common_labels([incident.labels, alert.labels])
        incident.last_alert_at = self.now
        self._of[identity] = incident
        self._touch(incident, "alert_joined", alert)
        return incident

    def _touch(self, incident: Incident, kind: str, alert: Alert) -> None:
        self.touched[incident.id] = incident
        incident.events.append(
            (
                kind,
                {
                    "alertname": alert.alertname,
                    "fingerprint": alert.fingerprint,
                    "organization_id": alert.organization_id,
                    "severity": alert.severity,
                },
            )
        )

    def pages(self, incident: Incident, alert: Alert) -> bool:
        """Whether this event of one of the incident's alerts pages (and note it if so)."""
        if alert.status == RESOLVED:
            if incident.status != RESOLVED or incident.paged_severity is None:
                return False
            if not any(kind == "paged_resolved" for kind, _ in incident.events):
                incident.events.append(("paged_resolved", {}))
                return True
            return False
        paged = SEVERITY_RANK[incident.paged_severity] if incident.paged_severity else -1
        if SEVERITY_RANK[alert.severity] <= paged:
            return False
        kind = "paged" if incident.paged_severity is None else "severity_raised"
        incident.events.append((kind, {"severity": alert.severity, "alertname": alert.alertname}))
        incident.paged_severity = alert.severity
        self.touched[incident.id] = incident
        return True
