"""Incidents: which alerts are one problem, decided in plain Python (no I/O).

An arriving firing alert joins an open incident when it is related to one of the incident's
alerts and the incident had an alert within the window: the same alert name (across
organizations), or a cause and its effect in the causal map (``bridge/topology.yml``, either
direction, transitively). Otherwise it opens a new incident. An incident's severity is the
highest of its alerts', its probable cause the alert furthest upstream in the map (else the
first), and it resolves when its last alert resolves.

Merging. An arriving firing alert can be related to several open incidents that are not related
to each other: ``ApiErrorRatioHigh`` and ``PaymentFailureRatioHigh`` are both effects of the
database, so when they fire before ``DatabaseErrorsHigh`` they open two incidents. The alert that
relates them makes them one (``merge``): the survivor is the incident paged at the highest
severity (an on-call person's phone already rang for it, and its PagerDuty incident is the one
that carries the highest page), the oldest among equals (the lowest number, the one people
already talk about); never-paged incidents lose to paged ones. The others' alerts move to the
survivor, whose severity, probable cause and title are recomputed from all of them (the
database, upstream of both); it keeps the highest severity paged, so the merge itself pages
nothing and only a later rise above that pages again. An absorbed incident ends: ``merged_into``
names the survivor, its status is resolved, and its timeline says ``merged_into`` while the
survivor's says ``merged``. It never pages a resolve of its own (``resolves`` is False for it):
the problem is not over, it goes on under the survivor's number. What its pages become (a
PagerDuty resolve, one line in Slack) and what its escalation becomes (stopped, the survivor
carries the walk) is decided by ``bridge.merging`` from ``IncidentBook.merges``. An incident
opened earlier in the same transaction (never stored, never paged) is absorbed without a
trace: its alerts simply join the survivor.

Paging follows the incident, not its alerts: ``IncidentBook`` pages the first firing (the
incident opens), a firing above every severity paged so far (it rose) and the resolve that
resolves the incident; every other alert joins silently.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
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
    new: bool = False  # joined in this transaction: its row's incident_id is to be written

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
    merged_into: int | None = None  # absorbed by a merge: the incident that carries on

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


def related_incidents(
    alertname: str,
    incidents: Iterable[Incident],
    topology: CausalMap,
    now: datetime,
    window: timedelta = DEFAULT_WINDOW,
) -> list[Incident]:
    """Every open incident a firing alert of this name is related to, within ``window`` of
    its last alert (more than one: the alert makes them one, ``IncidentBook.merge``)."""
    return [
        i
        for i in incidents
        if i.is_open and now - i.last_alert_at <= window and i.related_to(alertname, topology)
    ]


def _opened_order(incident: Incident) -> tuple[datetime, int]:
    """Oldest first: stored incidents by number, then the ones this transaction opened."""
    return (incident.opened_at, incident.id if incident.id > 0 else (1 << 62) - incident.id)


def choose_survivor(incidents: Sequence[Incident]) -> Incident:
    """The incident several merge into: the one paged at the highest severity, the oldest
    among equals (never-paged ones rank below every paged one)."""

    def paged(i: Incident) -> int:
        return SEVERITY_RANK[i.paged_severity] if i.paged_severity else -1

    return min(incidents, key=lambda i: (-paged(i), _opened_order(i)))


@dataclass(frozen=True)
class Merge:
    """One absorbed incident: what it was when absorbed, and which incident carries on."""

    absorbed: Incident
    survivor: Incident
    alert: Alert  # the alert that related them
    organizations: tuple[str, ...]  # the absorbed incident's, for routing its last message


def _common_labels(alerts: Sequence[dict[str, str]]) -> dict[str, str]:
    first, *rest = alerts
    return {k: v for k, v in first.items() if k != "severity" and all(r.get(k) == v for r in rest)}


class IncidentBook:
    """The open incidents during one ingest transaction, and what the transaction changes.

    ``place`` puts each new alert event into its incident (new incidents get temporary,
    negative ids until ``renumber`` gives them the ids reserved in the database). Then, while
    the deliveries are planned, ``would_page``/``paged`` and ``resolves``/``resolve_sent``
    decide which events page: the first firing, a firing above every severity paged so far,
    and the resolve that resolves a paged incident; every other alert joins silently. A firing
    related to several open incidents merges them (``merge``; ``merges`` lists the stored
    incidents it absorbed, for ``bridge.merging``)."""

    def __init__(
        self,
        incidents: Iterable[Incident],
        topology: CausalMap,
        now: datetime,
        window: timedelta = DEFAULT_WINDOW,
    ) -> None:
        self.incidents = {i.id: i for i in incidents}
        self.topology = topology
        self.now = now
        self.window = window
        self.touched: dict[int, Incident] = {}
        self._of: dict[tuple[str, datetime], Incident] = {
            m.identity: i for i in self.incidents.values() for m in i.members
        }
        self._placed: dict[tuple[str, datetime], Incident] = {}
        self._temporary = 0
        self.merges: list[Merge] = []  # stored incidents absorbed in this transaction

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
            self._note(incident, "alert_resolved", alert)
            if all(m.status == RESOLVED for m in incident.members):
                incident.status, incident.resolved_at = RESOLVED, self.now
                incident.events.append(("resolved", {}))
            self._placed[identity] = incident
            return incident
        if incident is None:
            related = related_incidents(
                alert.alertname, self.incidents.values(), self.topology, self.now, self.window
            )
            if len(related) > 1:
                incident = self.merge(related, alert)
            elif related:
                incident = related[0]
        if incident is None:
            self._temporary -= 1
            incident = Incident(self._temporary, self.now, self.now, new=True)
            self.incidents[incident.id] = incident
            incident.events.append(("opened", {"alertname": alert.alertname}))
            incident.labels = dict(alert.labels)
        if identity not in self._of:  # not the same instance again (released from a hold)
            incident.members.append(
                Member(
                    alert.fingerprint,
                    alert.starts_at,
                    alert.alertname,
                    alert.organization_id,
                    alert.severity,
                    alert.status,
                    self.now,
                    new=True,
                )
            )
            incident.labels = _common_labels([incident.labels, alert.labels])
            self._of[identity] = incident
            self._note(incident, "alert_joined", alert)
        incident.last_alert_at = self.now
        self._placed[identity] = incident
        return incident

    def merge(self, incidents: Sequence[Incident], alert: Alert) -> Incident:
        """Make these open incidents, which ``alert`` relates, one (see the module's
        docstring); the survivor, which the caller then places ``alert`` in."""
        alertname = alert.alertname
        survivor = choose_survivor(incidents)
        absorbed = sorted((i for i in incidents if i is not survivor), key=_opened_order)
        stored = [i for i in absorbed if i.id > 0]
        for incident in absorbed:
            orgs = tuple(incident.organizations)
            for member in incident.members:
                moved = replace(member, new=True)
                survivor.members.append(moved)
                self._of[moved.identity] = survivor
                if self._placed.get(moved.identity) is incident:
                    self._placed[moved.identity] = survivor
                member.new = False  # its row now names the survivor, not this incident
            survivor.labels = _common_labels([survivor.labels, incident.labels])
            survivor.opened_at = min(survivor.opened_at, incident.opened_at)
            survivor.last_alert_at = max(survivor.last_alert_at, incident.last_alert_at)
            if incident.paged_severity is not None and (
                survivor.paged_severity is None
                or SEVERITY_RANK[incident.paged_severity] > SEVERITY_RANK[survivor.paged_severity]
            ):
                survivor.paged_severity = incident.paged_severity
            if incident.id < 0:  # opened in this transaction: never stored, never paged
                survivor.events.extend(e for e in incident.events if e[0] != "opened")
                del self.incidents[incident.id]
                self.touched.pop(incident.id, None)
                continue
            incident.status, incident.resolved_at = RESOLVED, self.now
            incident.merged_into = survivor.id
            incident.events.append(
                ("merged_into", {"incident_id": survivor.id, "alertname": alertname})
            )
            self.touched[incident.id] = incident
            self.merges.append(Merge(incident, survivor, alert, orgs))
        if stored:
            survivor.events.append(
                ("merged", {"incidents": [i.id for i in stored], "alertname": alertname})
            )
        self.touched[survivor.id] = survivor
        return survivor

    @property
    def new_incidents(self) -> list[Incident]:
        return sorted((i for i in self.touched.values() if i.id < 0), key=lambda i: -i.id)

    def renumber(self, ids: Sequence[int]) -> None:
        """Give the new incidents (in the order they opened) their stored ids."""
        renumbered = {}
        for incident, new_id in zip(self.new_incidents, ids, strict=True):
            del self.incidents[incident.id], self.touched[incident.id]
            renumbered[incident.id] = new_id
            incident.id = new_id
            self.incidents[new_id] = self.touched[new_id] = incident
        for incident in self.incidents.values():  # a stored one merged into a new one
            if incident.merged_into in renumbered:
                incident.merged_into = renumbered[incident.merged_into]

    def incident_of(self, alert: Alert) -> Incident | None:
        return self._placed.get((alert.fingerprint, alert.starts_at))

    def _note(self, incident: Incident, kind: str, alert: Alert) -> None:
        self.touched[incident.id] = incident
        detail = {
            "alertname": alert.alertname,
            "fingerprint": alert.fingerprint,
            "organization_id": alert.organization_id,
            "severity": alert.severity,
        }
        incident.events.append((kind, detail))

    def would_page(self, incident: Incident, alert: Alert) -> bool:
        """A firing pages when the incident was not paged yet or it rises above that."""
        paged = SEVERITY_RANK[incident.paged_severity] if incident.paged_severity else -1
        return SEVERITY_RANK[alert.severity] > paged

    def paged(self, incident: Incident, alert: Alert) -> None:
        """The firing went out: note it when it is the first page or a higher severity."""
        self.touched[incident.id] = incident
        if not self.would_page(incident, alert):
            return
        kind = "paged" if incident.paged_severity is None else "severity_raised"
        incident.events.append((kind, {"severity": alert.severity, "alertname": alert.alertname}))
        incident.paged_severity = alert.severity

    def resolves(self, incident: Incident) -> bool:
        """Whether this resolve is the paged incident's (once)."""
        return (
            incident.status == RESOLVED
            and incident.merged_into is None  # absorbed: the problem goes on in its survivor
            and incident.paged_severity is not None
            and not any(kind == "paged_resolved" for kind, _ in incident.events)
        )

    def resolve_sent(self, incident: Incident) -> None:
        incident.events.append(("paged_resolved", {}))

    def routing_alert(self, incident: Incident, alert: Alert, severity: str) -> Alert:
        """What routes an incident's resolve: its last alert at the severity paged, without its
        organization when the incident spans several (then the defaults apply)."""
        labels = dict(alert.labels)
        labels["severity"] = severity
        if len(incident.organizations) > 1:
            labels.pop("organization_id", None)
        return replace(alert, labels=labels)
