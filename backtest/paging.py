"""Pages as the bridge sends them: the replayed firings (after Alertmanager's inhibition) fed in
time order through the bridge's own incident logic (``bridge.incidents.IncidentBook`` over the
causal map ``bridge/topology.yml``), the way its ingest does.

Each evaluation time at which firings start or end is one ingest transaction: the open incidents
are loaded, every new alert event placed into its incident (resolves first: an alert that
Alertmanager held back while a cause fired reaches the bridge after that cause's resolve), the
new incidents numbered, then each Alertmanager notification (its group: alertname and category)
planned as ``bridge.ingest.plan_notification`` plans it: a firing pages its incident when it
opens it or rises above every severity paged so far, and the other alerts of that incident in
the same notification go in the same message; every other firing joins silently; the resolve
that resolves a paged incident pages its resolve. One message per incident and notification is
one page (whatever number of channels it goes to).

Left out, so the count is an upper bound: the bridge's alert-fatigue rules (cooldown, flapping),
acknowledgements, quiet hours and per-organization preferences; every severity has a channel
(the bridge's defaults)."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from backtest.alerts import Episode
from bridge.incidents import DEFAULT_WINDOW, CausalMap, Incident, IncidentBook
from bridge.model import SEVERITY_RANK, Alert
from bridge.topology import load_topology

OPENED, RAISED, RESOLVED = "opened", "raised", "resolved"


@dataclass(frozen=True)
class Page:
    """One notification the bridge sends: an incident opening, its severity rising, its resolve."""

    at: int
    incident: int
    kind: str  # opened | raised | resolved
    severity: str  # the message's: the highest of its alerts' (a resolve: the highest paged)
    alertnames: tuple[str, ...]


@dataclass
class Paging:
    pages: list[Page] = field(default_factory=list)
    causes: dict[int, str] = field(default_factory=dict)  # incident -> probable cause
    alertnames: dict[int, list[str]] = field(default_factory=dict)  # incident -> its alerts

    @property
    def firing(self) -> list[Page]:
        return [p for p in self.pages if p.kind != RESOLVED]


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _alert(episode: Episode, status: str) -> Alert:
    labels = {**dict(episode.labels), "alertname": episode.alertname}
    # Alertmanager's fingerprint is a hash of the labels; any stable one serves
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    return Alert(
        fingerprint=fingerprint,
        status=status,
        labels=labels,
        annotations={},
        starts_at=_moment(episode.active_at),  # one instance per firing
        ends_at=_moment(episode.resolved_at) if status == RESOLVED else None,
    )


def _transaction(
    now: int,
    alerts: list[Alert],
    open_incidents: Iterable[Incident],
    topology: CausalMap,
    window: timedelta,
    next_id: int,
) -> tuple[IncidentBook, list[Page]]:
    """One ingest transaction: place every event, then plan each notification."""
    book = IncidentBook(open_incidents, topology, _moment(now), window)
    ordered = sorted(alerts, key=lambda a: (a.status != RESOLVED, a.alertname, a.fingerprint))
    for alert in ordered:
        book.place(alert)
    if book.new_incidents:
        book.renumber(range(next_id, next_id + len(book.new_incidents)))
    notifications: dict[tuple[str, str], list[Alert]] = defaultdict(list)
    for alert in ordered:
        notifications[(alert.alertname, alert.labels.get("category", ""))].append(alert)
    pages: list[Page] = []
    for _, group in sorted(notifications.items()):
        messages: dict[int, tuple[str, list[Alert]]] = {}  # incident -> (kind, its alerts)
        for alert in group:
            incident = book.incident_of(alert)
            if incident is None:  # a resolve no open incident holds: not in a replay
                raise AssertionError(f"{alert.alertname} resolved outside an incident")
            if alert.status == RESOLVED:
                if incident.paged_severity is not None and book.resolves(incident):
                    book.resolve_sent(incident)
                    pages.append(
                        Page(now, incident.id, RESOLVED, incident.paged_severity,
                             tuple(incident.alertnames))
                    )  # fmt: skip
                continue
            if incident.id not in messages and not book.would_page(incident, alert):
                continue  # joined an incident paged already
            if incident.id not in messages:
                kind = OPENED if incident.paged_severity is None else RAISED
                messages[incident.id] = (kind, [])
            messages[incident.id][1].append(alert)
            book.paged(incident, alert)
        for incident_id, (kind, members) in messages.items():
            severity = max((a.severity for a in members), key=SEVERITY_RANK.__getitem__)
            names = tuple(dict.fromkeys(a.alertname for a in members))
            pages.append(Page(now, incident_id, kind, severity, names))
    return book, pages


def bridge_pages(
    found: Iterable[Episode],
    end: int,
    topology: CausalMap | None = None,
    window: timedelta = DEFAULT_WINDOW,
    ignored: frozenset[str] = frozenset({"Watchdog"}),
) -> Paging:
    """The pages the bridge sends for these firings (a firing still on at ``end`` never
    resolves); ``ignored`` alerts (the dead man's switch) never reach its incidents."""
    topology = topology if topology is not None else load_topology()
    events: dict[int, list[Alert]] = defaultdict(list)
    for episode in found:
        if episode.alertname in ignored:
            continue
        events[episode.fired_at].append(_alert(episode, "firing"))
        if episode.resolved_at <= end:
            events[episode.resolved_at].append(_alert(episode, RESOLVED))
    paging = Paging()
    open_incidents: list[Incident] = []
    seen: dict[int, Incident] = {}
    next_id = 1
    for now in sorted(events):
        book, pages = _transaction(now, events[now], open_incidents, topology, window, next_id)
        next_id = max([next_id - 1, *book.incidents]) + 1
        paging.pages.extend(pages)
        seen.update(book.incidents)
        open_incidents = [i for i in book.incidents.values() if i.is_open]
    for incident_id, incident in seen.items():
        paging.causes[incident_id] = incident.probable_cause(topology)
        paging.alertnames[incident_id] = incident.alertnames
    return paging
