"""The API's work on an incident beyond acknowledging and resolving it: unacknowledge, snooze,
unsnooze, assign, notes. Each goes through the bridge's ``IncidentActions.act`` (``via="api"``),
like the console's, and is audited with the token's name when it changed something; a repeat
answers ``changed: false``. Limited to the token's organizations like every incident route
(403 outside them, also for the incident a merged one went into)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aiohttp import web

from bridge.oncall.actions import (
    Action,
    ActionRefused,
    BadArgument,
    OutsideScope,
    UnknownIncident,
)
from bridge.storage.console import AuditEntry, ConsoleIncident
from console.api.common import ApiError, answer, api, read_body
from console.api.incidents import _acted_on, _incident, outside
from console.api.schema import ActionDone, Assign, Note, Snooze
from console.api.tokens import Principal


async def _assignee(request: web.Request, incident: ConsoleIncident, name: str) -> str:
    """ "" nobody; else a console user who can see the incident (400 otherwise)."""
    if not name:
        return ""
    other = await api(request).store.get_user(name)
    if other is None:
        raise ApiError(400, f"assignee: no console user {name!r}")
    if other.organizations is not None and not set(other.organizations) & set(
        incident.organizations
    ):
        raise ApiError(400, f"assignee: {name} cannot see this incident")
    return name


async def _work(
    request: web.Request, who: Principal, action: Action, **kwargs: Any
) -> web.StreamResponse:
    state = api(request)
    incident = await _acted_on(request, who, await _incident(request, who))
    if action == "snooze":
        kwargs["snooze_for"] = timedelta(
            seconds=(await read_body(request, Snooze)).duration_seconds
        )
    elif action == "assign":
        body = await read_body(request, Assign)
        kwargs["assignee"] = await _assignee(request, incident, body.assignee)
    elif action == "note":
        text = (await read_body(request, Note)).text
        if "\x00" in text:
            raise ApiError(400, "text: a note cannot contain NUL characters")
        kwargs["text"] = text
    actions = state.host.incident_actions()
    if actions is None:
        raise ApiError(503, "this needs the bridge's incident actions")
    try:
        result = await actions.act(
            incident.id,
            action,
            person_id=who.username,
            via="api",
            within=who.organizations,
            **kwargs,
        )
    except UnknownIncident:
        raise ApiError(404, "no such incident") from None
    except OutsideScope as exc:  # merged away meanwhile
        raise outside(exc) from None
    except BadArgument as exc:
        raise ApiError(400, str(exc)) from None
    except ActionRefused as exc:
        raise ApiError(409, str(exc)) from None
    if result.changed:
        detail = {k: v for k, v in (result.detail or {}).items() if k not in ("by", "via")}
        entry = AuditEntry(
            state.now(),
            who.username,
            f"{action} incident",
            detail={
                **detail,
                "incident": result.incident_id,
                "via": "api",
                "token": who.token_name,
            },
        )
        await state.store.audit(entry)
    return answer(ActionDone(result.incident_id, action, result.changed, result.status))


async def unacknowledge_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _work(request, who, "unacknowledge")


async def snooze_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _work(request, who, "snooze")


async def unsnooze_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _work(request, who, "unsnooze")


async def assign_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _work(request, who, "assign")


async def note_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _work(request, who, "note")
