"""A fake PagerDuty Events API v2 (``POST /v2/enqueue``) keeping incident state by dedup_key."""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from tests.fakes._server import FakeServer

ENQUEUE_PATH = "/v2/enqueue"
SEVERITIES = ("critical", "error", "warning", "info")


class FakePagerDuty(FakeServer):
    """202 ``{"status":"success",...}`` for a valid event, 400 ``invalid event`` otherwise.

    ``events`` holds accepted events in order; ``incidents`` maps each dedup_key to
    ``"triggered"``, ``"acknowledged"`` or ``"resolved"`` as PagerDuty would.
    """

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.incidents: dict[str, str] = {}

    @property
    def events_url(self) -> str:
        return self.base_url + ENQUEUE_PATH

    def routes(self) -> list[web.RouteDef]:
        return [web.post(ENQUEUE_PATH, self._enqueue)]

    async def _enqueue(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return answer
        try:
            event = json.loads(recorded.body)
        except ValueError:
            return _invalid(["Malformed JSON"])
        if not isinstance(event, dict):
            return _invalid(["Event object must be a JSON object"])
        errors = validate_event(event)
        if errors:
            return _invalid(errors)
        action = event["event_action"]
        dedup_key = event.get("dedup_key") or uuid.uuid4().hex
        if action == "trigger":
            if self.incidents.get(dedup_key) != "acknowledged":
                self.incidents[dedup_key] = "triggered"
        elif dedup_key in self.incidents:
            self.incidents[dedup_key] = "resolved" if action == "resolve" else "acknowledged"
        self.events.append(event)
        return web.json_response(
            {"status": "success", "message": "Event processed", "dedup_key": dedup_key},
            status=202,
        )


def _invalid(errors: list[str]) -> web.Response:
    return web.json_response(
        {"status": "invalid event", "message": "Event object is invalid", "errors": errors},
        status=400,
    )


def validate_event(event: dict[str, Any]) -> list[str]:
    errors: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup_key = event.get("dedup_key")
    if dedup_key is not None and (not isinstance(dedup_key, str) or len(dedup_key) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup_key:
        errors.append("'dedup_key' is required for acknowledge and resolve events")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing or not an object")
        else:
            summary = payload.get("summary")
            if not isinstance(summary, str) or not summary:
                errors.append("'payload.summary' is missing or blank")
            elif len(summary) > 1024:
                errors.append("'payload.summary' is longer than 1024 characters")
            if not isinstance(payload.get("source"), str) or not payload.get("source"):
                errors.append("'payload.source' is missing or blank")
            if payload.get("severity") not in SEVERITIES:
                errors.append("'payload.severity' is invalid (must be critical/error/warning/info)")
            details = payload.get("custom_details")
            if details is not None and not isinstance(details, dict | str):
                errors.append("'payload.custom_details' must be an object")
    for name in ("links", "images"):
        items = event.get(name)
        if items is not None and (
            not isinstance(items, list) or not all(isinstance(i, dict) for i in items)
        ):
            errors.append(f"'{name}' must be a list of objects")
    for link in event.get("links") or []:
        if isinstance(link, dict) and not isinstance(link.get("href"), str):
            errors.append("'links[].href' is required")
    return errors
