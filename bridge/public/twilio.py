"""Twilio's callbacks: an SMS reply to a page (``/v1/twilio/sms``) and the key pressed in a call
(``/v1/twilio/voice``, the ``<Gather>`` action of ``bridge.channels.voice``).

Each request's ``X-Twilio-Signature`` is checked first (HMAC-SHA1 with ``TWILIO_AUTH_TOKEN`` over
``BRIDGE_PUBLIC_URL`` + the path and query, then the form's names and values; compared in
constant time): without it, 401 and nothing read further. The sender must be a person of the
on-call file (by the number their page went to): otherwise 403 and an empty answer, so an unknown
number gets nothing back. A replay (the same ``MessageSid``, or a second answer in one call) is
refused with 409. Replies are TwiML built by the ``twilio`` library, which escapes the text.
"""

from __future__ import annotations

import hmac
import logging

from aiohttp import web
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from bridge.oncall.actions import Action, ActionResult, UnknownIncident
from bridge.oncall.replies import HELP, parse_reply
from bridge.public.context import CONTEXT, PublicContext
from bridge.storage import StorageUnavailable

log = logging.getLogger(__name__)

TWIML = "application/xml"
MAX_FIELD = 1600
_DIGITS: dict[str, Action] = {"1": "acknowledge", "2": "resolve"}


async def _signed_form(
    request: web.Request, context: PublicContext, endpoint: str
) -> dict[str, str] | web.Response:
    """The form of a request Twilio signed, or the response refusing it."""
    if not context.twilio_auth_token or not context.public_url:
        context.count(endpoint, "unavailable")
        return web.Response(status=404, text="not configured\n")
    form = await request.post()
    params: dict[str, str] = {}
    for name, value in form.items():
        if not isinstance(value, str) or name in params or len(value) > MAX_FIELD:
            context.count(endpoint, "invalid")
            return web.Response(status=400, text="a form of single text fields is expected\n")
        params[name] = value
    validator = RequestValidator(context.twilio_auth_token)
    expected = validator.compute_signature(context.public_url + request.path_qs, params)
    given = request.headers.get("X-Twilio-Signature", "")
    if not hmac.compare_digest(expected.encode(), given.encode()):
        context.count(endpoint, "unauthorized")
        return web.Response(status=401, text="invalid X-Twilio-Signature\n")
    return params


def _twiml(body: str, status: int = 200) -> web.Response:
    return web.Response(status=status, text=body, content_type=TWIML)


def _sms(text: str | None, status: int = 200) -> web.Response:
    response = MessagingResponse()
    if text:
        response.message(text)
    return _twiml(str(response), status)


async def sms(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    params = await _signed_form(request, context, "twilio_sms")
    if isinstance(params, web.Response):
        return params
    person = context.oncall.person_by_phone(params.get("From", ""))
    if person is None:
        context.count("twilio_sms", "forbidden")
        return _sms(None, 403)  # an unknown number gets nothing
    message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not message_sid:
        context.count("twilio_sms", "invalid")
        return _sms(None, 400)
    reply = parse_reply(params.get("Body", ""))
    if reply is None:
        context.count("twilio_sms", "accepted")
        return _sms(HELP)
    try:
        if not await context.first_seen("twilio-sms", message_sid):
            context.count("twilio_sms", "replay")
            return _sms(None, 409)
        try:
            incident_id = reply.incident_id
            if incident_id is None:
                async with context.storage.transaction() as tx:
                    incident_id = await tx.newest_paged_incident(person.id)
                if incident_id is None:
                    context.count("twilio_sms", "accepted")
                    return _sms("No open incident paged you. " + HELP)
            result = await context.actions.act(
                incident_id, reply.action, person_id=person.id, via="sms"
            )
        except BaseException:
            await context.forget("twilio-sms", message_sid)
            raise
    except UnknownIncident:
        context.count("twilio_sms", "accepted")
        return _sms(f"There is no incident #{reply.incident_id}. " + HELP)
    except StorageUnavailable:
        context.count("twilio_sms", "unavailable")
        return _sms("PassItOn monitoring cannot reach its database; try again shortly.", 503)
    context.count("twilio_sms", "accepted")
    return _sms(_describe(result))


async def voice(request: web.Request) -> web.Response:
    context = request.app[CONTEXT]
    params = await _signed_form(request, context, "twilio_voice")
    if isinstance(params, web.Response):
        return params
    response = VoiceResponse()
    # An outbound call: To is the person called (their page's voice number).
    person = context.oncall.person_by_phone(params.get("To", ""))
    raw_id = request.query.get("incident", "")
    call_sid = params.get("CallSid", "")
    if person is None:
        context.count("twilio_voice", "forbidden")
        response.hangup()
        return _twiml(str(response), 403)
    if not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= 18) or not call_sid:
        context.count("twilio_voice", "invalid")
        response.hangup()
        return _twiml(str(response), 400)
    action = _DIGITS.get(params.get("Digits", ""))
    if action is None:
        context.count("twilio_voice", "accepted")
        response.say("That key does nothing. The incident is not acknowledged. Goodbye.")
        return _twiml(str(response))
    try:
        if not await context.first_seen("twilio-voice", call_sid):
            context.count("twilio_voice", "replay")
            response.hangup()
            return _twiml(str(response), 409)
        try:
            result = await context.actions.act(
                int(raw_id), action, person_id=person.id, via="voice"
            )
        except BaseException:
            await context.forget("twilio-voice", call_sid)
            raise
    except UnknownIncident:
        context.count("twilio_voice", "accepted")
        response.say("That incident no longer exists. Goodbye.")
        return _twiml(str(response))
    except StorageUnavailable:
        context.count("twilio_voice", "unavailable")
        response.say("The monitoring database cannot be reached. Please use the console. Goodbye.")
        return _twiml(str(response), 503)
    context.count("twilio_voice", "accepted")
    response.say(_describe(result) + " Goodbye.")
    return _twiml(str(response))


def _describe(result: ActionResult) -> str:
    done = {"acknowledge": "acknowledged", "resolve": "resolved", "silence": "silenced"}
    if result.changed:
        return f"Incident #{result.incident_id} {done[result.action]}: {result.title}"[:300]
    return f"Incident #{result.incident_id} was already {result.status}."
