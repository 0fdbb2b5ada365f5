"""One incident's page, acknowledging and resolving an incident (with its firing alerts), and
what the Now page (``now.py``) shows of an incident (``IncidentView``).

A user limited to some organizations sees only incidents touching them and, within those,
only their organizations' alerts (``ConsoleUser.organizations``, the store's scope); another
organization's incident is a 403. An action on an incident merged into another acts on that one
(``IncidentActions`` follows the merge), which must be within the user's organizations too."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.model import SEVERITY_RANK
from bridge.oncall.actions import OutsideScope, UnknownIncident
from bridge.oncall.config import Policy
from bridge.storage.console import (
    AlertRow,
    ConsoleIncident,
    ConsoleUser,
    EscalationRow,
    IncidentAck,
    IncidentEvent,
)
from console.alerts import audit_line, live_acknowledgements, suppression_items
from console.common import (
    ACK_CHOICES,
    ACK_LABELS,
    ATTEMPT_LABELS,
    PREFIX,
    SNOOZE_CHOICES,
    _audit,
    _back,
    _console,
    _form,
    _problem,
    _visitor,
    render,
    require,
)
from console.incident_work import (
    FormError,
    acted_on,
    choice,
    incident_or_404,
    outside,
    until_text,
    work_line,
)

RECENTLY = timedelta(hours=1)  # resolved incidents stay on the Now page this long
STATES = ("firing", "acknowledged", "silenced", "resolved")  # the Now page's order


@dataclass(frozen=True)
class IncidentView:
    """An incident as one user sees it: its alerts and organizations within their scope."""

    incident: ConsoleIncident
    alerts: list[AlertRow]
    organizations: list[str]
    state: str  # firing, acknowledged, silenced (every firing alert suppressed), resolved
    firing: int  # of its alerts shown
    hidden_organizations: int  # outside the user's scope


def incident_state(incident: ConsoleIncident, firing: list[AlertRow], muted: set) -> str:
    if incident.status == "resolved":
        return "resolved"
    if incident.status == "acknowledged":
        return "acknowledged"
    if firing and all(a.instance in muted for a in firing):
        return "silenced"
    return "firing"


def _user(request: web.Request) -> ConsoleUser:
    user = _visitor(request).user
    assert user is not None
    return user


def _view(
    incident: ConsoleIncident, alerts: list[AlertRow], user: ConsoleUser, muted: set
) -> IncidentView:
    firing = [a for a in alerts if a.status == "firing"]
    shown = [o for o in incident.organizations if user.sees(o)]
    return IncidentView(
        incident,
        alerts,
        shown,
        incident_state(incident, firing, muted),
        len(firing),
        len(incident.organizations) - len(shown),
    )


def _order(view: IncidentView) -> tuple[int, int, float]:
    return (
        STATES.index(view.state),
        -SEVERITY_RANK.get(view.incident.severity, 0),
        -view.incident.last_alert_at.timestamp(),
    )


# -- one incident ---------------------------------------------------------------------------

# the events that answer a page: shown beside the escalation's steps
ANSWERS = (
    "acknowledged",
    "resolved",
    "silenced",
    "acknowledgement_expired",
    "escalation_stopped",
    "unacknowledged",
    "snoozed",
    "unsnoozed",
    "snooze_ended",
)
EVENT_TEXT = {
    "opened": "opened",
    "paged": "paged",
    "severity_raised": "severity raised",
    "paged_resolved": "resolve sent",
    "resolved": "resolved",
    "acknowledged": "acknowledged",
    "escalation_step": "escalated",
    "acknowledgement_expired": "acknowledgement expired",
    "escalation_stopped": "escalation stopped",
    "silenced": "silenced",
    "merged": "merged",
    "merged_into": "merged into",
    "unacknowledged": "unacknowledged",
    "snoozed": "snoozed",
    "unsnoozed": "unsnoozed",
    "snooze_ended": "snooze ended",
    "assigned": "assigned",
    "unassigned": "unassigned",
    "note": "note",
}


def _event_line(event: IncidentEvent) -> tuple[datetime, str, str, str]:
    d = event.detail
    what = EVENT_TEXT.get(event.kind, event.kind.replace("_", " "))
    if event.kind == "opened":
        return (event.at, what, f"by {d.get('alertname', '?')}", "")
    if event.kind in ("paged", "severity_raised"):
        return (event.at, what, f"{d.get('severity', '?')} ({d.get('alertname', '?')})", "")
    if event.kind == "escalation_step":
        # who was notified how, and whom the step could not reach (and why)
        notified = ", ".join(
            f"{n.get('person', '?')} by {n.get('via', '?')}" for n in d.get("notified", [])
        )
        missed = "; ".join(
            f"{m.get('person', '?')} not by {m.get('via', '?')}: {m.get('reason', '')}"
            for m in d.get("unreachable", [])
        )
        step = f"step {d.get('step', '?')} of {d.get('steps', '?')}, policy {d.get('policy', '?')}"
        if d.get("round", 1) > 1:
            step += f", repeat {d['round'] - 1}"
        return (event.at, what, f"{step}: {notified or 'nobody reached'}", missed)
    if event.kind in ("resolved", "silenced") and d.get("by"):
        extra = f" (silence {d['silence_id']})" if d.get("silence_id") else ""
        return (event.at, what, f"by {d.get('by')} via {d.get('via', '?')}{extra}", "")
    if event.kind in ("merged", "merged_into"):
        return (event.at, what, ", ".join(f"#{i}" for i in _ids(d)), "")
    line = work_line(event, what)
    if line is not None:
        return line
    if event.kind == "acknowledged":
        note = f"“{d['note']}”" if d.get("note") else ""
        alerts = d.get("alerts", 0)
        text = f"by {d.get('by', '?')} via {d.get('via', '?')}"
        if d.get("until"):
            text += " " + until_text(d["until"])
        return (event.at, what, text + (f", {alerts} alert(s)" if alerts else ""), note)
    return (event.at, what, "", "")


def _ids(detail: dict[str, Any]) -> list[object]:
    for key in ("incidents", "absorbed", "into", "survivor", "incident_id"):
        value = detail.get(key)
        if isinstance(value, list):
            return value
        if value is not None:
            return [value]
    return []


async def _timeline(
    request: web.Request, incident: ConsoleIncident, alerts: list[AlertRow]
) -> list[tuple[datetime, str, str, str]]:
    """The incident's events and its alerts' (fired, deliveries, acknowledgements and other
    actions, resolved), oldest first like an alert's page. An alert joining or resolving is
    its own fired/resolved line; the acknowledgements an incident's acknowledgement made are
    its one line."""
    console = _console(request)
    timeline = [
        _event_line(e)
        for e in await console.store.incident_events(incident.id)
        if e.kind not in ("alert_joined", "alert_resolved")
    ]
    for a in alerts:
        org = f" ({a.organization_id})" if a.organization_id else ""
        timeline.append((a.starts_at, "fired", f"{a.alertname}{org}", f"{a.severity}"))
        if a.status == "resolved" and a.ends_at is not None:
            timeline.append((a.ends_at, "alert resolved", f"{a.alertname}{org}", ""))
    names = {
        a.instance: f"{a.alertname}{f' ({a.organization_id})' if a.organization_id else ''}"
        for a in alerts
    }
    for entry in await console.store.audit_of(list(names)):
        if entry.action in ("acknowledged", "unacknowledged") and (
            entry.detail.get("incident") == incident.id
        ):
            continue  # the incident's own line says it
        what = names.get((entry.fingerprint or "", entry.starts_at or incident.opened_at), "")
        timeline.append(audit_line(entry, f"{what} by {entry.username}"))
    instances = set(names)
    deliveries = [
        d
        for d in await console.store.deliveries([a.fingerprint for a in alerts])
        if any(d.carries(*i) for i in instances)
    ]
    channel_of = {d.id: d.channel for d in deliveries}
    for d in deliveries:
        notice = f" ({d.notice})" if d.notice else ""
        timeline.append((d.created_at, "queued", f"{d.channel}: {d.message_status}{notice}", ""))
    for attempt in await console.store.attempts(list(channel_of)):
        label = ATTEMPT_LABELS.get(attempt.result, attempt.result)
        what = f"{channel_of[attempt.delivery_id]}, attempt {attempt.attempt}"
        timeline.append((attempt.at, label, what, attempt.error or ""))
    timeline.sort(key=lambda item: item[0])
    return timeline


def escalation_view(
    escalation: EscalationRow | None, policy: Policy | None, events: list[IncidentEvent]
) -> dict[str, Any] | None:
    """The incident's escalation: its policy's steps, each with when it went out and to whom
    (``escalation_step`` events), where the walk stands now, and the answers (who
    acknowledged or resolved it, and how)."""
    if escalation is None:
        return None
    sent: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for e in events:
        if e.kind == "escalation_step":
            line = _event_line(e)
            sent[int(e.detail.get("step", 0) or 0)].append((e.at, line[2].partition(": ")[2]))
    steps = []
    for i, step in enumerate(policy.steps if policy else ()):
        steps.append(
            {
                "number": i + 1,
                "after": step.after,
                "notify": ", ".join(step.notify),
                "via": ", ".join(step.via),
                "sent": sent.get(i + 1, []),
                "due": escalation.state == "active" and escalation.step == i,
            }
        )
    answers = [
        (e.at, EVENT_TEXT.get(e.kind, e.kind), e.detail.get("by", ""), e.detail.get("via", ""))
        for e in events
        if e.kind in ANSWERS
    ]
    return {"row": escalation, "policy": policy, "steps": steps, "answers": answers}


async def incident_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _user(request)
    incident = await incident_or_404(request)
    alerts = await console.store.incident_alerts([incident.id], user.organizations)
    found = await console.store.suppressions([a.instance for a in alerts])
    muted = {
        a.instance: items
        for a in alerts
        if (items := suppression_items(found.get(a.instance), resolved=a.status == "resolved"))
    }
    silenced = {i for a in alerts if a.status == "firing" and (i := a.instance) in muted}
    view = _view(incident, alerts, user, silenced)
    acks = await live_acknowledgements(console, [a.instance for a in alerts])
    events = await console.store.incident_events(incident.id)
    acked_by = next((e for e in reversed(events) if e.kind == "acknowledged"), None)
    oncall = console.host.oncall()
    escalation = await console.store.escalation(incident.id)
    policy = oncall.policies.get(escalation.policy_id) if oncall and escalation else None
    return render(
        request,
        "incident.html",
        view=view,
        incident=incident,
        acks=acks,
        muted=muted,
        acked_by=acked_by,
        escalation=escalation_view(escalation, policy, events),
        can_resolve=console.host.incident_actions() is not None,
        ack_choices=ACK_LABELS,
        snooze_choices=SNOOZE_CHOICES,
        assignable=await _assignable(request, incident) if user.role != "viewer" else [],
        unacked=sum(1 for a in alerts if a.status == "firing" and a.instance not in acks),
        timeline=await _timeline(request, incident, alerts),
        notice=request.query.get("notice", ""),
        reconcile=await console.store.reconcile_status(),
    )


async def _assignable(request: web.Request, incident: ConsoleIncident) -> list[str]:
    """The console users who can see the incident (whom it can be assigned to)."""
    users = await _console(request).store.list_users()
    orgs = set(incident.organizations)
    return sorted(
        u.username for u in users if u.organizations is None or set(u.organizations) & orgs
    )


async def acknowledge_as_user(
    request: web.Request, incident: ConsoleIncident, note: str, ack_for: str = "policy"
) -> IncidentAck | None:
    """Acknowledge the incident and its firing alerts within the user's organizations (the
    store), and, when the host has the bridge's incident actions, through them (status,
    timeline, escalation for ``ack_for``, mirrors): what every console acknowledgement of an
    incident goes through, one or in bulk. None when it is gone; ``status`` resolved: nothing
    done."""
    console = _console(request)
    user = _user(request)
    entry = _audit(request, "acknowledged incident", incident=incident.id, note=note)
    actions = console.host.incident_actions()
    done = await console.store.acknowledge_incident(
        incident.id, user.organizations, note, entry, set_status=actions is None
    )
    if done is None or done.status == "resolved" or actions is None:
        return done
    try:
        detail: dict[str, object] = {"note": note} if note else {}
        if done.alerts:
            detail["alerts"] = done.alerts
        result = await actions.act(
            incident.id,
            "acknowledge",
            person_id=user.username,
            via="console",
            detail=detail,
            ack_for=ack_for,
            within=user.organizations,
        )
    except UnknownIncident:
        return None
    except OutsideScope as exc:  # merged away meanwhile
        raise outside(request, exc) from None
    return replace(done, changed=result.changed)


@require("responder")
async def acknowledge_incident(request: web.Request) -> web.StreamResponse:
    asked = await incident_or_404(request)
    incident = await acted_on(request, asked)  # the one it was merged into, if it was
    form = await _form(request)
    note = form.get("note", "").strip()[:500]
    try:
        ack_for = choice(form, "for", ACK_CHOICES, "policy")
    except FormError as exc:
        return _problem(request, 400, str(exc))
    done = await acknowledge_as_user(request, incident, note, ack_for)
    if done is None:
        raise web.HTTPNotFound(text="no such incident")
    if done.status == "resolved":
        return _problem(
            request, 409, "This incident has resolved; there is nothing to acknowledge."
        )
    back = f"{PREFIX}/" if form.get("from") == "now" else f"{PREFIX}/incidents/{asked.id}"
    if done.changed or done.alerts:
        notice = f"incident #{incident.id} acknowledged"
        if done.alerts:
            notice += f" with {done.alerts} alert{'s' * (done.alerts > 1)}"
    else:
        notice = "already acknowledged"
    raise _back(back, notice)


@require("responder")
async def resolve_incident(request: web.Request) -> web.StreamResponse:
    """Resolve the incident through the bridge's incident actions (its status, timeline,
    escalation and mirrors); the audit entry follows when it changed anything."""
    console = _console(request)
    user = _user(request)
    incident = await incident_or_404(request)
    await acted_on(request, incident)
    form = await _form(request)
    actions = console.host.incident_actions()
    if actions is None:
        return _problem(request, 409, "This console's host cannot resolve incidents.")
    try:
        result = await actions.act(
            incident.id,
            "resolve",
            person_id=user.username,
            via="console",
            within=user.organizations,
        )
    except UnknownIncident:
        raise web.HTTPNotFound(text="no such incident") from None
    except OutsideScope as exc:  # merged away meanwhile
        raise outside(request, exc) from None
    if result.changed:
        await console.store.audit(_audit(request, "resolved incident", incident=result.incident_id))
    back = f"{PREFIX}/" if form.get("from") == "now" else f"{PREFIX}/incidents/{incident.id}"
    notice = f"incident #{result.incident_id} resolved" if result.changed else "already resolved"
    raise _back(back, notice)
