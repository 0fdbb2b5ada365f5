"""PagerDuty's V3 webhooks (``POST /v1/pagerduty/webhook``): an incident acknowledged or resolved
in PagerDuty is acknowledged or resolved here, which stops the bridge's own escalation.

Order of checks, each before the next reads more:

1. ``X-PagerDuty-Signature``: ``v1=`` + hex HMAC-SHA256 of the raw body with
   ``PAGERDUTY_WEBHOOK_SECRET``; during a secret rotation PagerDuty sends several, comma
   separated, and any one matching passes (each compared in constant time). Otherwise 401 and
   nothing parsed. Bodies over the listener's cap (64 KiB; PagerDuty guarantees delivery up to
   55 KB) are refused with 413 before that.
2. The envelope ``{"event": {"id", "event_type", "occurred_at", "agent", "data"}}``: only
   ``incident.acknowledged`` and ``incident.resolved`` do something; every other event type is
   answered 200 and ignored.
3. ``occurred_at`` more than ``MAX_AGE`` old (or ``MAX_SKEW`` in the future): 200, ignored. A
   captured, validly signed body cannot be replayed later.
4. ``event.id`` is recorded (``inbound_requests``): a second delivery of the same event — PagerDuty
   delivers at least once and retries — is answered 200 with nothing done.
5. The incident: ``data.incident_key`` is the dedup_key the bridge gave it (sha256 of
   ``incident:<id>``), looked up among the open incidents; none (not ours, or resolved already):
   200, ignored.

Why 200 rather than 404/409 for the ignored cases: PagerDuty drops a delivery answered with a
4xx and, after three dropped in a row, disables the subscription for 24 hours, which would lose
the acknowledgements that follow; a 5xx is retried (about 20 minutes), which is what a database
outage (503 here) wants. Only a bad signature (401) and a malformed body (400) are refused.

Who acted: ``event.agent``, PagerDuty's user. The on-call file's person whose
``contacts.pagerduty`` is that user id acts; a user the file does not know acts as
``pagerduty:<user id>``: PagerDuty authenticated them and the incident is acknowledged there
already, so refusing (403) would only leave the bridge paging people for an incident someone is
working on. The action is not mirrored back to PagerDuty (``StoredIncidentActions``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.oncall.actions import Action, UnknownIncident
from bridge.public.context import CONTEXT, PublicContext
from bridge.storage import StorageUnavailable

log = logging.getLogger(__name__)

ENDPOINT = "pagerduty"
SOURCE = "pagerduty"  # inbound_requests.source
MAX_AGE = timedelta(hours=1)
MAX_SKEW = timedelta(minutes=5)
MAX_SIGNATURES = 10
ACTIONS: dict[str, Action] = {
    "incident.acknowledged": "acknowledge",
    "incident.resolved": "resolve",
}
_KEY = re.compile(r"[0-9a-fA-F]{64}")
_AGENT_ID = re.compile(r"[A-Za-z0-9]{1,32}")


def signature(secret: str, body: bytes) -> str:
    """The ``v1=…`` signature PagerDuty sends for ``body`` signed with ``secret``."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether any ``v1`` signature of the (comma-separated) header matches."""
    expected = signature(secret, body).encode()
    given = [part.strip() for part in header.split(",")][:MAX_SIGNATURES]
    matched = False
    for candidate in given:
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    return matched


def person_of(context: PublicContext, agent: Any) -> str:
    """Who acts: the on-call file's person with that PagerDuty user id, else ``pagerduty:ID``;
    an agent that is no user (a service resolving by itself) ``pagerduty:service:ID``."""
    agent_id = agent.get("id") if isinstance(agent, dict) else None
    if not isinstance(agent_id, str) or not _AGENT_ID.fullmatch(agent_id):
        return "pagerduty"
    kind = str(agent.get("type") or "user_reference").removesuffix("_reference")
    if kind != "user":
        return (
            f"pagerduty:{kind}:{agent_id}"
            if _AGENT_ID.fullmatch(kind.replace("_", ""))
            else "pagerduty"
        )
    person = context.oncall.person_by_pagerduty(agent_id)
    return person.id if person is not None else f"pagerduty:{agent_id}"


def _answer(context: PublicContext, outcome: str, text: str, status: int = 200) -> web.Response:
    context.count(ENDPOINT, outcome)
    return web.json_response({"result": text}, status=status)


async def webhook(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    secret = context.pagerduty_webhook_secret
    if not secret:
        return _answer(context, "unavailable", "PAGERDUTY_WEBHOOK_SECRET is not set", 404)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        context.count(ENDPOINT, "too_large")
        raise
    if not verify(secret, body, request.headers.get("X-PagerDuty-Signature", "")):
        return _answer(context, "unauthorized", "invalid X-PagerDuty-Signature", 401)
    try:
        event = _event(body)
    except ValueError as exc:
        return _answer(context, "invalid", str(exc), 400)
    action = ACTIONS.get(event["event_type"])
    if action is None:
        return _answer(context, "ignored", f"{event['event_type'][:80]} is not acted on")
    now = context.clock()
    occurred = event["occurred_at"]
    if now - occurred > MAX_AGE or occurred - now > MAX_SKEW:
        return _answer(context, "stale", "occurred_at is too far from now; not acted on")
    key = event["data"].get("incident_key")
    person_id = person_of(context, event["agent"])
    try:
        if not await context.first_seen(SOURCE, event["id"]):
            return _answer(context, "replay", "this event was handled already")
        try:
            incident_id = None
            if isinstance(key, str) and _KEY.fullmatch(key):
                async with context.storage.transaction() as tx:
                    incident_id = await tx.open_incident_by_dedup_key(key)
            if incident_id is None:
                return _answer(context, "ignored", "no open incident of this bridge has that key")
            result = await context.actions.act(
                incident_id, action, person_id=person_id, via="pagerduty"
            )
        except BaseException:
            await context.forget(SOURCE, event["id"])
            raise
    except UnknownIncident:
        return _answer(context, "ignored", "no open incident of this bridge has that key")
    except StorageUnavailable:
        return _answer(context, "unavailable", "the database cannot be reached", 503)
    done = "acknowledged" if action == "acknowledge" else "resolved"
    text = f"incident #{result.incident_id} {done}"
    if not result.changed:
        text = f"incident #{result.incident_id} was {result.status} already"
    return _answer(context, "accepted", text)


def _event(body: bytes) -> dict[str, Any]:
    """The checked fields of a V3 webhook's event; ValueError says what is wrong."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the body is not JSON") from None
    event = envelope.get("event") if isinstance(envelope, dict) else None
    if not isinstance(event, dict):
        raise ValueError('expected {"event": {...}}')
    event_id, event_type = event.get("id"), event.get("event_type")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= 200:
        raise ValueError("event.id must be a string")
    if not isinstance(event_type, str) or not event_type:
        raise ValueError("event.event_type must be a string")
    try:
        occurred = datetime.fromisoformat(str(event.get("occurred_at")))
    except ValueError:
        raise ValueError("event.occurred_at must be an ISO 8601 time") from None
    if occurred.tzinfo is None:
        raise ValueError("event.occurred_at must have a time zone")
    data = event.get("data")
    return {
        "id": event_id,
        "event_type": event_type,
        "occurred_at": occurred,
        "agent": event.get("agent"),
        "data": data if isinstance(data, dict) else {},
    }
