"""The console's work on an incident beyond acknowledging and resolving it: unacknowledge,
snooze and unsnooze, assign (to yourself or another console user who can see it), notes; and
on an alert: unacknowledge and notes. Every incident action goes through the bridge's one
``IncidentActions.act`` (``via="console"``), which writes the timeline (who, how) and the
escalation; the audit entry follows when it changed something. A repeat changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from bridge.oncall.actions import (
    MAX_NOTE,
    ActionRefused,
    ActionResult,
    BadArgument,
    OutsideScope,
    UnknownIncident,
)
from bridge.storage.console import AlertRow, ConsoleIncident, ConsoleUser, IncidentEvent
from bridge.webhook import clean_text
from console.alerts import _alert_or_404, live_acknowledgements
from console.common import (
    PREFIX,
    SNOOZE_CHOICES,
    _audit,
    _back,
    _console,
    _forbidden,
    _form,
    _problem,
    _row_id,
    _stamp,
    _visitor,
    require,
)

VERBS = {
    "unacknowledge": "unacknowledged",
    "snooze": "snoozed",
    "unsnooze": "back on the Now page",
    "assign": "assigned",
    "note": "note added",
}
UNCHANGED = {
    "unacknowledge": "not acknowledged: nothing to undo",
    "snooze": "already snoozed until then",
    "unsnooze": "not snoozed",
    "assign": "already assigned so",
    "note": "that note is there already",
}


class FormError(Exception):
    """A form field out of bounds: a 400 naming it."""


def _user(request: web.Request) -> ConsoleUser:
    user = _visitor(request).user
    assert user is not None
    return user


async def note_text(request: web.Request, field: str = "text") -> str:
    """The note as typed: NUL refused (PostgreSQL cannot store it, and it is never typed),
    other control characters replaced, at most ``MAX_NOTE`` characters, not empty."""
    raw = (await request.post()).get(field, "")
    if not isinstance(raw, str):
        raise FormError(f"{field}: text expected")
    if "\x00" in raw:
        raise FormError(f"{field}: a note cannot contain NUL characters")
    text = clean_text(raw).strip()
    if not text:
        raise FormError(f"{field}: a note needs text")
    if len(text) > MAX_NOTE:
        raise FormError(f"{field}: a note is at most {MAX_NOTE} characters")
    return text


def choice(form: dict[str, str], field: str, choices: dict[str, Any], default: str) -> Any:
    value = form.get(field, default) or default
    if value not in choices:
        raise FormError(f"{field} must be one of {', '.join(choices)}")
    return choices[value]


async def assignee_of(request: web.Request, incident: ConsoleIncident, name: str) -> str:
    """``me``: the user; "": nobody; else a console user who can see the incident."""
    if name == "me":
        return _user(request).username
    if not name:
        return ""
    other = await _console(request).store.get_user(name)
    if other is None:
        raise FormError(f"assignee: no console user {name!r}")
    if other.organizations is not None and not set(other.organizations) & set(
        incident.organizations
    ):
        raise FormError(f"assignee: {name} cannot see this incident (other organizations)")
    return name


async def incident_or_404(request: web.Request) -> ConsoleIncident:
    """The incident of the URL: 404 when there is none, 403 when it touches none of the
    user's organizations."""
    ident = _row_id(request.match_info["id"])
    found = await _console(request).store.incident(ident, None)
    if found is None:
        raise web.HTTPNotFound(text="no such incident")
    if not found.within(_user(request).organizations):
        raise _forbidden(request, f"Incident #{ident} is outside your organizations.")
    return found


async def acted_on(request: web.Request, incident: ConsoleIncident) -> ConsoleIncident:
    """The incident an action on ``incident`` changes: itself, or the one it was merged into,
    checked against the user's organizations again (403)."""
    store = _console(request).store
    ident = await store.surviving_incident(incident.id)
    if ident is None or ident == incident.id:
        return incident
    survivor = await store.incident(ident, None)
    if survivor is None:
        raise web.HTTPNotFound(text="no such incident")
    if not survivor.within(_user(request).organizations):
        raise outside(request, OutsideScope(incident.id, ident))
    return survivor


def outside(request: web.Request, refusal: OutsideScope) -> web.HTTPForbidden:
    return _forbidden(request, str(refusal).capitalize() + ".")


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    console = _console(request)
    asked = await incident_or_404(request)
    incident = await acted_on(request, asked)
    form = await _form(request)
    actions = console.host.incident_actions()
    if actions is None:
        return _problem(request, 409, "This console's host cannot act on incidents.")
    kwargs: dict[str, Any] = {}
    acked: list[AlertRow] = []
    if action == "unacknowledge":  # the alerts whose acknowledgement goes with the incident's
        alerts = await console.store.incident_alerts([incident.id], None)
        live = await live_acknowledgements(console, [a.instance for a in alerts])
        acked = [a for a in alerts if a.status == "firing" and a.instance in live]
    try:
        if action == "snooze":
            kwargs["snooze_for"] = choice(form, "duration", SNOOZE_CHOICES, "")
        elif action == "assign":
            kwargs["assignee"] = await assignee_of(request, incident, form.get("assignee", ""))
        elif action == "note":
            kwargs["text"] = await note_text(request)
    except FormError as exc:
        return _problem(request, 400, str(exc))
    try:
        result: ActionResult = await actions.act(
            incident.id,
            action,
            person_id=_user(request).username,
            via="console",
            within=_user(request).organizations,
            **kwargs,
        )
    except UnknownIncident:
        raise web.HTTPNotFound(text="no such incident") from None
    except OutsideScope as exc:  # merged away meanwhile
        raise outside(request, exc) from None
    except BadArgument as exc:
        return _problem(request, 400, str(exc))
    except ActionRefused as exc:
        return _problem(request, 409, str(exc))
    if result.changed:
        detail = {k: v for k, v in (result.detail or {}).items() if k not in ("by", "via")}
        entry = _audit(request, f"{VERBS[action]} incident", incident=result.incident_id, **detail)
        await console.store.audit(entry)
        for alert in acked:  # on each alert's own timeline too
            await console.store.audit(
                _audit(request, "unacknowledged", alert, incident=result.incident_id)
            )
    back = f"{PREFIX}/" if form.get("from") == "now" else f"{PREFIX}/incidents/{asked.id}"
    notice = f"incident #{result.incident_id} {VERBS[action]}"
    raise _back(back, notice if result.changed else UNCHANGED[action])


@require("responder")
async def unacknowledge_incident(request: web.Request) -> web.StreamResponse:
    return await _act(request, "unacknowledge")


@require("responder")
async def snooze_incident(request: web.Request) -> web.StreamResponse:
    return await _act(request, "snooze")


@require("responder")
async def unsnooze_incident(request: web.Request) -> web.StreamResponse:
    return await _act(request, "unsnooze")


@require("responder")
async def assign_incident(request: web.Request) -> web.StreamResponse:
    return await _act(request, "assign")


@require("responder")
async def note_incident(request: web.Request) -> web.StreamResponse:
    return await _act(request, "note")


def until_text(value: str) -> str:
    if value == "resolved":
        return "until resolved"
    try:
        return f"until {_stamp(datetime.fromisoformat(value))} UTC"
    except ValueError:
        return ""


def work_line(event: IncidentEvent, what: str) -> tuple[datetime, str, str, str] | None:
    """The lines of the console's work on an incident (and the sweep's)."""
    d = event.detail
    by = f"by {d.get('by') or '?'} via {d.get('via', '?')}"
    if event.kind == "note":
        return (event.at, what, str(d.get("text", "")), by)
    if event.kind in ("assigned", "unassigned"):
        text = f"to {d['to']}" if d.get("to") else "nobody"
        return (event.at, what, f"{text} {by}", f"was {d['from']}" if d.get("from") else "")
    if event.kind == "unacknowledged":
        alerts = d.get("alerts", 0)
        extra = f", {alerts} alert acknowledgement(s) dropped" if alerts else ""
        if d.get("escalation"):
            extra += f"; escalation {d['escalation']}"
        return (event.at, what, f"{by}{extra}", d.get("pagerduty", ""))
    if event.kind in ("snoozed", "unsnoozed"):
        return (event.at, what, f"{by} {until_text(d.get('until', ''))}".rstrip(), "")
    if event.kind == "snooze_ended":
        return (event.at, what, f"snoozed by {d.get('by') or '?'}; back on the Now page", "")
    if event.kind == "acknowledgement_expired" and d.get("chosen"):
        again = "; escalation from step 1" if d.get("escalation") else ""
        return (event.at, what, f"the chosen time ran out: firing again{again}", "")
    return None


# -- one alert ------------------------------------------------------------------------------


@require("responder")
async def unacknowledge_alert(request: web.Request) -> web.StreamResponse:
    """Forget the alert's acknowledgement: its repeats notify again."""
    console = _console(request)
    alert = await _alert_or_404(request)
    entry = _audit(request, "unacknowledged", alert)
    done = await console.store.unacknowledge(alert.fingerprint, alert.starts_at, entry)
    raise _back(
        f"{PREFIX}/alerts/{alert.table}/{alert.id}",
        "unacknowledged" if done else "not acknowledged: nothing to undo",
    )


@require("responder")
async def note_alert(request: web.Request) -> web.StreamResponse:
    """A note on the alert's timeline (its audit trail); the same note twice is kept once."""
    console = _console(request)
    alert = await _alert_or_404(request)
    try:
        text = await note_text(request)
    except FormError as exc:
        return _problem(request, 400, str(exc))
    user = _user(request)
    trail = await console.store.audit_for(alert.fingerprint, alert.starts_at)
    notes = [e for e in trail if e.action == "note"]
    if notes and notes[-1].username == user.username and notes[-1].detail.get("text") == text:
        raise _back(f"{PREFIX}/alerts/{alert.table}/{alert.id}", UNCHANGED["note"])
    await console.store.audit(_audit(request, "note", alert, text=text))
    raise _back(f"{PREFIX}/alerts/{alert.table}/{alert.id}", "note added")
