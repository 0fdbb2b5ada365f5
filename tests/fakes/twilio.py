"""A fake Twilio: the Messages and Calls APIs (``POST /2010-04-01/Accounts/{sid}/Messages.json``,
``.../Calls.json``), and ``twilio_signature``, the ``X-Twilio-Signature`` Twilio puts on the
webhooks it sends (written from Twilio's documentation, not with the library under test)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import uuid
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from tests.fakes._server import FakeServer, RecordedRequest

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
TEST_ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
TEST_AUTH_TOKEN = "fake-twilio-auth-token"


def twilio_error(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's JSON error body."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


class FakeTwilio(FakeServer):
    """Checks basic auth and the form like Twilio, answers 201 with a Message resource.

    ``messages`` holds the accepted form bodies (``To``, ``From``, ``Body``) in order.
    ``fail_to(number, status, code)`` makes every message to one number fail that way, which
    lets a test fail one recipient out of several regardless of order.
    """

    def __init__(
        self, account_sid: str = TEST_ACCOUNT_SID, auth_token: str = TEST_AUTH_TOKEN
    ) -> None:
        super().__init__()
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.messages: list[dict[str, str]] = []
        self.calls: list[dict[str, str]] = []
        self._failures: dict[str, tuple[int, int, str, dict[str, str]]] = {}

    def fail_to(
        self,
        number: str,
        status: int,
        code: int,
        message: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        self._failures[number] = (status, code, message or f"error {code}", dict(headers or {}))

    def succeed_to(self, number: str) -> None:
        self._failures.pop(number, None)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/2010-04-01/Accounts/{sid}/Messages.json", self._create),
            web.post("/2010-04-01/Accounts/{sid}/Calls.json", self._call),
        ]

    async def _admit(
        self, request: web.Request
    ) -> tuple[RecordedRequest, web.StreamResponse | None]:
        """Record the request; a scripted answer, or Twilio's refusal of bad credentials or
        another account, or None to go on."""
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return recorded, answer
        if not self._authorized(request.headers.get("Authorization")):
            return recorded, _json(401, twilio_error(401, 20003, "Authenticate"))
        if request.match_info["sid"] != self.account_sid:
            missing = twilio_error(404, 20404, "The requested resource was not found")
            return recorded, _json(404, missing)
        return recorded, None

    async def _call(self, request: web.Request) -> web.StreamResponse:
        """Twilio's Calls resource: To, From and one of Twiml / Url required."""
        recorded, answer = await self._admit(request)
        if answer is not None:
            return answer
        sid = request.match_info["sid"]
        form = recorded.form()
        to, from_ = form.get("To", ""), form.get("From", "")
        if not _E164.match(to):
            return _json(
                400, twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            )
        if not from_:
            return _json(400, twilio_error(400, 21213, "No 'From' number is specified"))
        if not (form.get("Twiml") or form.get("Url")):
            return _json(400, twilio_error(400, 21205, "Url parameter is required."))
        if to in self._failures:
            status, code, message, headers = self._failures[to]
            return _json(status, twilio_error(status, code, message), headers)
        self.calls.append(form)
        call_sid = "CA" + uuid.uuid4().hex
        return _json(
            201,
            {
                "account_sid": sid,
                "api_version": "2010-04-01",
                "direction": "outbound-api",
                "from": from_,
                "sid": call_sid,
                "status": "queued",
                "to": to,
                "uri": f"/2010-04-01/Accounts/{sid}/Calls/{call_sid}.json",
            },
        )

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return user == self.account_sid and password == self.auth_token

    async def _create(self, request: web.Request) -> web.StreamResponse:
        recorded, answer = await self._admit(request)
        if answer is not None:
            return answer
        sid = request.match_info["sid"]
        form = recorded.form()
        to, from_, body = form.get("To", ""), form.get("From", ""), form.get("Body", "")
        if not to:
            return _json(400, twilio_error(400, 21604, "A 'To' phone number is required."))
        if not _E164.match(to):
            return _json(
                400, twilio_error(400, 21211, f"The 'To' number {to} is not a valid phone number.")
            )
        if not from_:
            return _json(400, twilio_error(400, 21603, "A 'From' phone number is required."))
        if not body:
            return _json(400, twilio_error(400, 21602, "Message body is required."))
        if len(body) > 1600:
            return _json(
                400,
                twilio_error(
                    400, 21617, "The concatenated message body exceeds the 1600 character limit."
                ),
            )
        if to in self._failures:
            status, code, message, headers = self._failures[to]
            return _json(status, twilio_error(status, code, message), headers)
        self.messages.append(form)
        message_sid = "SM" + uuid.uuid4().hex
        now = format_datetime(datetime.now(UTC), usegmt=True)
        return _json(
            201,
            {
                "account_sid": sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": from_,
                "messaging_service_sid": None,
                "num_media": "0",
                "num_segments": str(_segments(body)),
                "price": None,
                "price_unit": "USD",
                "sid": message_sid,
                "status": "queued",
                "subresource_uris": {
                    "media": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}/Media.json"
                },
                "to": to,
                "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
            },
        )


def _segments(body: str) -> int:
    if all(ord(c) < 128 for c in body):
        return 1 if len(body) <= 160 else -(-len(body) // 153)
    return 1 if len(body) <= 70 else -(-len(body) // 67)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def twilio_signature(auth_token: str, url: str, params: dict[str, str]) -> str:
    """``X-Twilio-Signature``: base64 of HMAC-SHA1 (the auth token as key) over the full URL
    followed by every POST parameter's name and value, sorted by name."""
    data = url + "".join(name + params[name] for name in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
