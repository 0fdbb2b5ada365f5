"""Acknowledging or silencing a selection of the Now page (incidents and alerts) at once, each
item through the path its single action takes (``acknowledge_as_user`` of an incident or an
alert, ``silence_as_user`` of an alert, the bridge's ``IncidentActions`` silence of an incident).

Every item is checked before anything is done: a malformed item is a 400 naming it, one that
does not exist a 404 naming it, one outside the user's organizations (an incident merged into
one outside them included) a 403 naming it, and then nothing is acted on. A user limited to
organizations silences an incident's alerts of theirs one by one (the incident's own silence
would cover the other organizations' alerts too)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from aiohttp import web

from bridge.oncall.actions import UnknownIncident
from bridge.oncall.incident_actions import SilenceError
from bridge.storage import ALERT_TABLES
from bridge.storage.console import AlertRow, ConsoleIncident
from console.alerts import SilenceRefused, silence_as_user
from console.alerts import acknowledge_as_user as acknowledge_alert
from console.common import (
    BIGINT_MAX,
    PREFIX,
    SILENCE_CHOICES,
    _audit,
    _back,
    _console,
    _problem,
    _visitor,
    require,
)
from console.incidents import acknowledge_as_user as acknowledge_incident
from console.triage import PageOptions

MAX_ITEMS = 500
ACTIONS = ("acknowledge", "silence")


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Selection:
    incidents: list[ConsoleIncident]
    alerts: list[AlertRow]


def _number(text: str, item: str) -> int:
    if not text.isascii() or not text.isdigit() or not 0 < int(text) <= BIGINT_MAX:
        raise Refused(400, f"not an item: {item[:80]!r} (incident:ID or alert:TABLE:ID)")
    return int(text)


async def _selection(request: web.Request, items: list[str]) -> Selection:
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    if not items:
        raise Refused(400, "Nothing is selected: tick some rows (x) first.")
    if len(items) > MAX_ITEMS:
        raise Refused(400, f"At most {MAX_ITEMS} items at once, not {len(items)}.")
    incident_ids: list[int] = []
    alert_keys: list[tuple[str, int]] = []
    for item in dict.fromkeys(items):
        kind, _, rest = item.partition(":")
        if kind == "incident":
            incident_ids.append(_number(rest, item))
        elif kind == "alert" and rest.partition(":")[0] in ALERT_TABLES:
            table, _, ident = rest.partition(":")
            alert_keys.append((table, _number(ident, item)))
        else:
            raise Refused(400, f"not an item: {item[:80]!r} (incident:ID or alert:TABLE:ID)")
    selection = Selection([], [])
    missing, outside = [], []
    for ident in incident_ids:
        found = await console.store.incident(ident, None)
        survivor = await console.store.surviving_incident(ident) if found else None
        carried = await console.store.incident(survivor, None) if survivor != ident else found
        if found is None or survivor is None or carried is None:
            missing.append(f"incident #{ident}")
        elif not found.within(user.organizations):
            outside.append(f"incident #{ident}")
        elif not carried.within(user.organizations):
            outside.append(f"incident #{ident} (merged into #{survivor})")
        else:
            selection.incidents.append(found)
    for table, ident in alert_keys:
        alert = await console.store.alert(table, ident)
        if alert is None:
            missing.append(f"alert {table}/{ident}")
        elif not user.sees(alert.organization_id):
            outside.append(f"alert {table}/{ident}")
        else:
            selection.alerts.append(alert)
    if missing:
        raise Refused(404, f"Not found (nothing was done): {', '.join(missing)}.")
    if outside:
        raise Refused(403, f"Outside your organizations (nothing was done): {', '.join(outside)}.")
    return selection


async def _silence_incident(request: web.Request, incident: ConsoleIncident, choice: str) -> int:
    """Silences made for the incident (0: nothing firing of it to silence)."""
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    actions = console.host.incident_actions()
    if user.organizations is None and actions is not None:
        try:
            result = await actions.act(
                incident.id,
                "silence",
                person_id=user.username,
                via="console",
                silence_for=timedelta(seconds=SILENCE_CHOICES[choice]),
            )
        except UnknownIncident:
            return 0
        except SilenceError as exc:
            raise SilenceRefused(502, str(exc)) from None
        await console.store.audit(
            _audit(request, "silenced incident", incident=result.incident_id, duration=choice)
        )
        return 1
    alerts = await console.store.incident_alerts([incident.id], user.organizations)
    made = 0
    for alert in alerts:
        if alert.status == "firing":
            await silence_as_user(request, alert, choice, f"incident #{incident.id}")
            made += 1
    return made


@require("responder")
async def bulk_action(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    action = str(posted.get("action", ""))
    choice = str(posted.get("duration", "1h"))
    page_keys = ("q", "all", "group", "snoozed")
    options = PageOptions.of({k: str(v) for k, v in posted.items() if k in page_keys})
    items = [str(v) for v in posted.getall("item", [])]
    try:
        if action not in ACTIONS:
            raise Refused(400, f"action must be one of {', '.join(ACTIONS)}")
        if action == "silence" and choice not in SILENCE_CHOICES:
            raise Refused(400, f"duration must be one of {', '.join(SILENCE_CHOICES)}")
        selection = await _selection(request, items)
    except Refused as exc:
        return _problem(request, exc.status, str(exc))
    done = skipped = 0
    if action == "acknowledge":
        for incident in selection.incidents:
            acked = await acknowledge_incident(request, incident, "")
            if acked is not None and acked.status != "resolved" and (acked.changed or acked.alerts):
                done += 1
            else:
                skipped += 1
        for alert in selection.alerts:
            if alert.status == "firing" and await acknowledge_alert(request, alert, ""):
                done += 1
            else:
                skipped += 1
        what = "acknowledged"
    else:
        try:
            for incident in selection.incidents:
                made = await _silence_incident(request, incident, choice)
                done, skipped = done + (made > 0), skipped + (made == 0)
            for alert in selection.alerts:
                if alert.status != "firing":
                    skipped += 1
                    continue
                await silence_as_user(request, alert, choice, "")
                done += 1
        except SilenceRefused as exc:
            return _problem(request, exc.status, f"Silenced {done}, then refused: {exc}")
        what = f"silenced for {choice}"
    total = len(selection.incidents) + len(selection.alerts)
    notice = f"{what}: {done} of {total} selected"
    if skipped:
        notice += f" ({skipped} already done or resolved)"
    raise _back(options.path(PREFIX), notice)
