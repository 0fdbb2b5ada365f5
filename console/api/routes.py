"""Every route of the API, declared once (``ROUTES``): the router and the OpenAPI document
served at ``/api/v1/openapi.json`` are both derived from it, the bodies' schemas from the
msgspec structs in ``schema.py``. ``python -m console.api.routes`` prints the document."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from console.api import incident_work as work
from console.api import incidents, settings, silences
from console.api.common import API, MAX_LIMIT, Api, Handler, answer, api_middleware, guarded
from console.api.schema import (
    RESPONSES,
    Acknowledge,
    Assign,
    NewSilence,
    Note,
    PreferenceChange,
    SilencePreviewRequest,
    Snooze,
    ThresholdChange,
)
from console.forms import ORGANIZATION, TUNABLE  # ORGANIZATION: rebound below as a Param
from console.host import ConsoleHost
from passiton_common.http_client import async_client
from passiton_common.proxies import ClientAddress, parse_networks

PREFIX = "/api/v1"


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    schema: dict[str, Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # under PREFIX, aiohttp's {name} placeholders (the same in OpenAPI)
    handler: Handler
    role: str
    summary: str
    response: str | None  # schema name of the 2xx body; None: no body (204)
    status: int = 200
    query: tuple[Param, ...] = ()
    body: type[msgspec.Struct] | None = None
    body_required: bool = True


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


LIMIT = Param(
    "limit", "page size (default 50)", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}
)
INCIDENT_CURSOR = Param(
    "cursor", "next_cursor of the previous page", {"type": "string", "pattern": "^[0-9]{1,19}$"}
)
ALERT_CURSOR = Param(
    "cursor",
    "next_cursor of the previous page (opaque)",
    {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,200}$"},
)
ORGANIZATION = Param(
    "organization",
    "one organization (within the token's)",
    {"type": "string", "pattern": ORGANIZATION.pattern},
)
SEVERITY = Param("severity", "severity", _enum(*incidents.SEVERITIES))

ROUTES: tuple[Route, ...] = (
    Route(
        "GET", "/incidents", incidents.list_incidents, "viewer",
        "Incidents, newest first", "IncidentPage",
        query=(Param("status", "status", _enum(*incidents.INCIDENT_STATUSES)), SEVERITY,
               ORGANIZATION, LIMIT, INCIDENT_CURSOR),
    ),
    Route(
        "GET", "/incidents/{id}", incidents.get_incident, "viewer",
        "One incident with its alerts and timeline", "IncidentDetail",
    ),
    Route(
        "POST", "/incidents/{id}/acknowledge", incidents.acknowledge_incident, "responder",
        "Acknowledge the incident (and its firing alerts), for a time or until resolved",
        "ActionDone", body=Acknowledge, body_required=False,
    ),
    Route(
        "POST", "/incidents/{id}/unacknowledge", work.unacknowledge_incident, "responder",
        "Back to firing; the escalation starts again from step 1", "ActionDone",
    ),
    Route(
        "POST", "/incidents/{id}/snooze", work.snooze_incident, "responder",
        "Snooze: off the Now page, pages and steps held, not acknowledged", "ActionDone",
        body=Snooze,
    ),
    Route(
        "POST", "/incidents/{id}/unsnooze", work.unsnooze_incident, "responder",
        "End the snooze now", "ActionDone",
    ),
    Route(
        "POST", "/incidents/{id}/assign", work.assign_incident, "responder",
        "Assign to a console user who can see it (\"\": nobody)", "ActionDone", body=Assign,
    ),
    Route(
        "POST", "/incidents/{id}/notes", work.note_incident, "responder",
        "A note on the incident's timeline", "ActionDone", body=Note,
    ),
    Route(
        "POST", "/incidents/{id}/resolve", incidents.resolve_incident, "responder",
        "Resolve the incident", "ActionDone",
    ),
    Route(
        "GET", "/alerts", incidents.list_alerts, "viewer",
        "Alerts (firing and recent), newest first", "AlertPage",
        query=(Param("status", "status", _enum(*incidents.ALERT_STATUSES)),
               Param("category", "category", _enum(*incidents.CATEGORIES)), SEVERITY,
               ORGANIZATION, LIMIT, ALERT_CURSOR),
    ),
    Route(
        "GET", "/alerts/{id}", incidents.get_alert, "viewer",
        "One alert (id: <category>-<number>)", "Alert",
    ),
    Route(
        "GET", "/silences", silences.list_silences, "viewer",
        "Every Alertmanager's silences (within the token's organizations)", "SilenceList",
    ),
    Route(
        "POST", "/silences", silences.create_silence, "responder",
        "Create a silence in Alertmanager", "SilenceCreated", status=201, body=NewSilence,
    ),
    Route(
        "POST", "/silences/preview", silences.preview_silence, "responder",
        "The firing alerts these matchers would silence", "SilencePreview",
        body=SilencePreviewRequest,
    ),
    Route(
        "PUT", "/silences/{id}", silences.edit_silence, "responder",
        "Edit a silence (Alertmanager replaces it when its matchers change)", "SilenceEdited",
        body=NewSilence,
    ),
    Route(
        "DELETE", "/silences/{id}", silences.expire_silence, "responder",
        "Expire a silence", None, status=204,
    ),
    Route(
        "GET", "/settings", settings.get_settings, "viewer",
        "Per-organization notification preferences", "Settings", query=(ORGANIZATION,),
    ),
    Route(
        "PUT", "/settings/{organization}", settings.put_preferences, "admin",
        "Replace an organization's notification preferences (within the token's"
        " organizations)", "Preference", body=PreferenceChange,
    ),
    Route(
        "PUT", "/settings/{organization}/thresholds/{alertname}", settings.put_threshold,
        "admin", "Set an organization's threshold of one alert (within the token's"
        " organizations)", None, status=204, body=ThresholdChange,
    ),
    Route(
        "DELETE", "/settings/{organization}/thresholds/{alertname}", settings.delete_threshold,
        "admin", "Back to the rule's default threshold", None, status=204,
    ),
    Route(
        "GET", "/oncall", settings.get_oncall, "viewer",
        "Who is on call now and next on each schedule", "Oncall",
        query=(Param("at", "a time (ISO 8601) instead of now",
                     {"type": "string", "format": "date-time"}),),
    ),
)  # fmt: skip

_ERRORS = {
    "400": "invalid parameter or body",
    "401": "no, an unknown, an expired or a revoked token",
    "403": "the token's role is too low, or the object is outside the token's organizations",
    "404": "not found",
    "429": "too many failed token attempts from this address",
}


def _rename(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: (v.replace("#/$defs/", "#/components/schemas/") if k == "$ref" else _rename(v))
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_rename(v) for v in schema]
    return schema


_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "id": {"type": "string"},
    "organization": ORGANIZATION.schema,  # the query parameter's (Param) schema
    "alertname": _enum(*TUNABLE),
}


def _path_param(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": _PATH_SCHEMAS[name]}
        for name in re.findall(r"\{(\w+)\}", path)
    ]


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}}


def _operation(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(route.status): {"description": route.summary}
        | ({"content": _json(route.response)} if route.response else {})
    }
    errors = {**_ERRORS}
    if route.method in ("POST", "PUT"):
        errors |= {"409": "conflict (e.g. the incident has resolved)", "413": "body too large"}
    if route.path.startswith("/silences"):
        errors["502"] = "Alertmanager refused or could not be reached"
    for code, text in errors.items():
        responses[code] = {"description": text, "content": _json("Error")}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "description": f"Needs the {route.role} role.",
        "parameters": _path_param(route.path)
        + [
            {
                "name": p.name,
                "in": "query",
                "required": False,
                "description": p.description,
                "schema": p.schema,
            }
            for p in route.query
        ],
        "responses": responses,
    }
    if route.body is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": _json(route.body.__name__),
        }
    return operation


def openapi_document() -> dict[str, Any]:
    bodies = tuple(r.body for r in ROUTES if r.body is not None)
    _, components = msgspec.json.schema_components(
        (*RESPONSES, *bodies), ref_template="#/components/schemas/{name}"
    )
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "PassItOn monitoring API",
            "version": "1",
            "description": "Incidents, alerts, silences, settings and on-call. Authenticate"
            " with `Authorization: Bearer pio_...`, a personal token from `passiton-monitoring"
            " token create`; it is limited to its role and organizations.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": _rename(components),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
        "paths": paths,
    }


def create_api_app(
    host: ConsoleHost, *, trusted_proxies: Iterable[str] = (), body_timeout_seconds: float = 10.0
) -> web.Application:
    """The API, for its host to mount at ``/api/v1/``."""
    state = Api(
        host,
        clients=ClientAddress(parse_networks(trusted_proxies, "BRIDGE_CONSOLE_TRUSTED_PROXIES")),
        body_timeout_seconds=body_timeout_seconds,
    )
    app = web.Application(middlewares=[api_middleware])
    app[API] = state
    document = openapi_document()

    async def openapi(_: web.Request) -> web.StreamResponse:
        return answer(document)

    app.router.add_get("/openapi.json", openapi)
    for route in ROUTES:
        app.router.add_route(route.method, route.path, guarded(route.role, route.handler))

    async def lifecycle(_: web.Application):
        state.http = async_client()
        yield
        await state.http.aclose()

    app.cleanup_ctx.append(lifecycle)
    return app


if __name__ == "__main__":  # `python -m console.api.routes`: the document openapi.json serves
    json.dump(openapi_document(), sys.stdout, indent=2)
    sys.stdout.write("\n")
