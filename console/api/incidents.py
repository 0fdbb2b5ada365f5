"""The API's incidents and alerts: listing with filters and a cursor, one incident with its
alerts and timeline, acknowledging and resolving (through the bridge's ``IncidentActions``,
``via="api"``), and alerts by id (``<category>-<row id>``).

Everything is limited to the token's organizations: an incident that touches none of them, or
an alert of another organization, is a 403 ("outside the token's organizations"); one that does
not exist is a 404. An action on an incident merged into another acts on that one, which must be
within the token's organizations too."""

from __future__ import annotations

from datetime import timedelta

from aiohttp import web

from bridge.oncall.actions import AckFor, Action, OutsideScope, UnknownIncident
from bridge.storage.console import AlertRow, AuditEntry, ConsoleIncident, Cursor, HistoryFilter
from bridge.storage.console_api import IncidentFilter
from bridge.storage.types import ALERT_TABLES
from console.api.common import (
    BIGINT_MAX,
    ApiError,
    answer,
    api,
    choice,
    limit_of,
    organization_filter,
    read_optional_body,
    row_id,
)
from console.api.schema import (
    Acknowledge,
    ActionDone,
    Alert,
    AlertPage,
    Incident,
    IncidentDetail,
    IncidentPage,
    TimelineEntry,
)
from console.api.tokens import Principal

SEVERITIES = ("critical", "high", "medium", "low")
INCIDENT_STATUSES = ("firing", "acknowledged", "resolved")
ALERT_STATUSES = ("firing", "resolved")
CATEGORIES = tuple(t.removesuffix("_alerts") for t in ALERT_TABLES)


def incident_body(incident: ConsoleIncident, who: Principal) -> Incident:
    return Incident(
        id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=incident.status,
        probable_cause=incident.probable_cause,
        organizations=[o for o in incident.organizations if who.sees(o)],
        alert_count=incident.alert_count,
        opened_at=incident.opened_at,
        last_alert_at=incident.last_alert_at,
        acknowledged_at=incident.acknowledged_at,
        resolved_at=incident.resolved_at,
        ack_expires_at=incident.ack_expires_at,
        snoozed_until=incident.snoozed_until,
        assignee=incident.assignee,
    )


def alert_body(alert: AlertRow) -> Alert:
    return Alert(
        id=f"{alert.category}-{alert.id}",
        category=alert.category,
        alertname=alert.alertname,
        status=alert.status,
        severity=alert.severity,
        organization_id=alert.organization_id,
        summary=alert.summary,
        description=alert.description,
        labels=alert.labels,
        annotations=alert.annotations,
        starts_at=alert.starts_at,
        ends_at=alert.ends_at,
        received_at=alert.received_at,
        incident_id=alert.incident_id,
    )


async def list_incidents(request: web.Request, who: Principal) -> web.StreamResponse:
    where = IncidentFilter(
        status=choice(request, "status", INCIDENT_STATUSES),
        severity=choice(request, "severity", SEVERITIES),
        organization_id=organization_filter(request, who),
        within=who.organizations,
    )
    limit = limit_of(request)
    cursor = request.query.get("cursor", "")
    before = None
    if cursor:
        if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 19:
            raise ApiError(400, "cursor: the next_cursor of a previous page")
        # 19 digits may be past bigint (an asyncpg OverflowError, a 500): a cursor past every
        # id is the first page, as the document's pattern allows it
        before = min(int(cursor), BIGINT_MAX)
    rows = await api(request).tokens.api_incidents(where, before, limit)
    following = str(rows[-1].id) if len(rows) == limit else None
    return answer(IncidentPage([incident_body(i, who) for i in rows], following))


OUTSIDE = "outside the token's organizations"


async def _incident(request: web.Request, who: Principal) -> ConsoleIncident:
    """The incident of the path: 404 when there is none, 403 outside the token's scope."""
    ident = row_id(request.match_info["id"])
    found = await api(request).store.incident(ident, None)
    if found is None:
        raise ApiError(404, "no such incident")
    if not found.within(who.organizations):
        raise ApiError(403, f"incident {ident} is {OUTSIDE}")
    return found


def outside(refusal: OutsideScope) -> ApiError:
    """The 403 of an action whose incident (after merges) is outside the token's scope."""
    return ApiError(403, str(refusal).replace("outside your organizations", OUTSIDE))


async def _acted_on(
    request: web.Request, who: Principal, incident: ConsoleIncident
) -> ConsoleIncident:
    """The incident an action on ``incident`` changes: itself, or the one it was merged into,
    checked against the token's organizations again (403)."""
    store = api(request).store
    ident = await store.surviving_incident(incident.id)
    if ident is None or ident == incident.id:
        return incident
    survivor = await store.incident(ident, None)
    if survivor is None:
        raise ApiError(404, "no such incident")
    if not survivor.within(who.organizations):
        raise ApiError(403, f"incident {incident.id} was merged into {ident}, which is {OUTSIDE}")
    return survivor


async def get_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    state = api(request)
    incident = await _incident(request, who)
    alerts = await state.store.incident_alerts([incident.id], who.organizations)
    events = await state.store.incident_events(incident.id)
    return answer(
        IncidentDetail(
            incident_body(incident, who),
            [alert_body(a) for a in alerts],
            [TimelineEntry(e.at, e.kind, e.detail) for e in events],
        )
    )


async def _act(request: web.Request, who: Principal, action: Action) -> web.StreamResponse:
    state = api(request)
    incident = await _acted_on(request, who, await _incident(request, who))
    entry = AuditEntry(
        state.now(),
        who.username,
        f"{'acknowledged' if action == 'acknowledge' else 'resolved'} incident",
        detail={"incident": incident.id, "via": "api", "token": who.token_name},
    )
    actions = state.host.incident_actions()
    ack_for: AckFor = "policy"
    if action == "acknowledge":
        body = await read_optional_body(request, Acknowledge)
        if body.until_resolved and body.expires_in_seconds is not None:
            raise ApiError(400, "expires_in_seconds or until_resolved, not both")
        if body.expires_in_seconds is not None:
            ack_for = timedelta(seconds=body.expires_in_seconds)
        elif body.until_resolved:
            ack_for = "resolved"
        # the incident's firing alerts within the token's organizations are acknowledged by
        # the store; the bridge's actions (when it has them) do the status and the escalation
        done = await state.store.acknowledge_incident(
            incident.id, who.organizations, "", entry, set_status=actions is None
        )
        if done is None:
            raise ApiError(404, "no such incident")
        if done.status == "resolved":
            raise ApiError(409, "the incident has resolved; there is nothing to acknowledge")
        if actions is None:
            return answer(ActionDone(incident.id, action, done.changed, "acknowledged"))
    elif actions is None:
        raise ApiError(503, "resolving needs the bridge's incident actions")
    else:
        await state.store.audit(entry)
    assert actions is not None
    try:
        result = await actions.act(
            incident.id,
            action,
            person_id=who.username,
            via="api",
            ack_for=ack_for,
            within=who.organizations,
        )
    except UnknownIncident:
        raise ApiError(404, "no such incident") from None
    except OutsideScope as exc:  # merged away meanwhile
        raise outside(exc) from None
    return answer(ActionDone(result.incident_id, action, result.changed, result.status))


async def acknowledge_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _act(request, who, "acknowledge")


async def resolve_incident(request: web.Request, who: Principal) -> web.StreamResponse:
    return await _act(request, who, "resolve")


async def list_alerts(request: web.Request, who: Principal) -> web.StreamResponse:
    category = choice(request, "category", CATEGORIES)
    where = HistoryFilter(
        categories=(category,) if category else (),
        severity=choice(request, "severity", SEVERITIES),
        organization_id=organization_filter(request, who),
        status=choice(request, "status", ALERT_STATUSES),
        within=who.organizations,
    )
    limit = limit_of(request)
    text = request.query.get("cursor", "")
    try:
        cursor = Cursor.decode(text) if text else None
    except ValueError:
        raise ApiError(400, "cursor: the next_cursor of a previous page") from None
    rows = await api(request).store.history(where, cursor, limit)
    following = None
    if len(rows) == limit:
        last = rows[-1]
        following = Cursor(last.starts_at, last.table, last.id).encode()
    return answer(AlertPage([alert_body(a) for a in rows], following))


async def get_alert(request: web.Request, who: Principal) -> web.StreamResponse:
    category, _, number = request.match_info["id"].rpartition("-")
    if category not in CATEGORIES:
        raise ApiError(404, "no such alert")
    alert = await api(request).store.alert(f"{category}_alerts", row_id(number))
    if alert is None:
        raise ApiError(404, "no such alert")
    if not who.sees(alert.organization_id):
        raise ApiError(403, f"alert {request.match_info['id']} is {OUTSIDE}")
    return answer(alert_body(alert))
