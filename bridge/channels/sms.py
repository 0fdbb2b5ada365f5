"""SMS through the official ``twilio`` library's async client, one message per recipient.

The Twilio client always builds ``https://api.twilio.com/...`` URLs; ``TWILIO_API_URL`` is
honoured by the HTTP client underneath, which rewrites that prefix to the configured base URL
(and also turns the library's float timeout into an aiohttp ``ClientTimeout``, and remembers the
``Retry-After`` header that ``TwilioRestException`` does not carry).

A delivery is per channel, but SMS is sent per recipient. When some recipients got the text and
others did not, the DeliveryError's ``remaining`` names the ones still owed it (see
``base.deliver_each``): a worker retrying with those recipients does not text anyone twice.
"""

from __future__ import annotations

import base64
import contextvars
from collections.abc import Awaitable, Callable

import aiohttp
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from bridge.channels.base import DeliveryError, deliver_each
from bridge.channels.config import DEFAULT_TWILIO_API_URL, is_e164
from bridge.channels.text import alert_headline, is_gsm7, one_line, truncate
from bridge.model import Message
from bridge.retry import parse_retry_after

MAX_GSM7 = 1600  # Twilio's limit for a concatenated body
MAX_UCS2 = 670  # ten 67-character UCS-2 segments
TRANSIENT_CODES = frozenset({20429})
TWILIO_BASE = "https://api.twilio.com"

_last_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "twilio_retry_after", default=None
)


class RebasingTwilioHttpClient(AsyncTwilioHttpClient):
    """Twilio's aiohttp client, sending to ``base_url`` instead of ``https://api.twilio.com``."""

    def __init__(self, base_url: str = DEFAULT_TWILIO_API_URL, timeout: float = 10.0) -> None:
        # No session yet: aiohttp sessions belong to a running loop; made on first request.
        super().__init__(pool_connections=False, timeout=timeout)
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    def rebase(self, url: str) -> str:
        if url.startswith(TWILIO_BASE):
            return self.base_url + url[len(TWILIO_BASE) :]
        return url

    async def request(
        self,
        method: str,
        url: str,
        params: dict[str, object] | None = None,
        data: dict[str, object] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the signature is Twilio's
        allow_redirects: bool = False,
    ) -> Response:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        seconds = timeout if timeout is not None else self.timeout
        headers = dict(headers or {})
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers["Authorization"] = f"Basic {token}"
        async with self._session.request(
            method.upper(),
            self.rebase(url),
            params=params,  # type: ignore[arg-type]
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=seconds),
            allow_redirects=allow_redirects,
        ) as response:
            text = await response.text()
            _last_retry_after.set(parse_retry_after(response.headers.get("Retry-After")))
            return Response(response.status, text, response.headers)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def render_sms(message: Message) -> str:
    """A compact body: title, then one line per alert; GSM-7 within 1600, otherwise 670."""
    head = [truncate(one_line(message.title), 200, "...")]
    if message.notice:
        head.append(truncate(one_line(message.notice), 300, "..."))
    lines = [f"- {truncate(alert_headline(a), 200, '...')}" for a in message.alerts]
    body = "\n".join(head + lines)
    limit = MAX_GSM7 if is_gsm7(body) else MAX_UCS2
    if len(body) <= limit:
        return body
    # Keep whole alert lines while they fit, then say how many were left out.
    kept = list(head)
    for index, line in enumerate(lines):
        more = f"(+{len(lines) - index} more)"
        if len("\n".join([*kept, line, more])) > limit:
            kept.append(more)
            break
        kept.append(line)
    return truncate("\n".join(kept), limit, "...")


class SmsNotifier:
    name = "sms"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        recipients: tuple[str, ...],
        *,
        api_url: str = DEFAULT_TWILIO_API_URL,
        timeout: float = 10.0,
    ) -> None:
        self.from_number = from_number
        self.recipients = recipients
        self.http_client, self.client = twilio_client(account_sid, auth_token, api_url, timeout)

    def __repr__(self) -> str:
        return f"SmsNotifier(from={self.from_number!r}, api_url={self.http_client.base_url!r})"

    async def notify(self, message: Message) -> None:
        body = render_sms(message)
        await deliver_each(
            message.recipients or self.recipients, lambda to: self._send(to, body), what="to"
        )

    async def _send(self, to: str, body: str) -> None:
        if not is_e164(to):
            raise DeliveryError("not an E.164 phone number", retryable=False)
        await twilio_call(
            lambda: self.client.messages.create_async(to=to, from_=self.from_number, body=body)
        )

    async def aclose(self) -> None:
        await self.http_client.close()


def twilio_client(
    account_sid: str, auth_token: str, api_url: str, timeout: float
) -> tuple[RebasingTwilioHttpClient, Client]:
    """Twilio's client on an HTTP client that sends to ``api_url`` (SMS and voice share it)."""
    http_client = RebasingTwilioHttpClient(api_url, timeout)
    # An explicit (non-empty) environment keeps the library from reading TWILIO_EDGE /
    # TWILIO_REGION from os.environ, which would move requests off TWILIO_API_URL.
    client = Client(
        account_sid,
        auth_token,
        http_client=http_client,
        environment={"TWILIO_EDGE": "", "TWILIO_REGION": ""},
    )
    return http_client, client


async def twilio_call(request: Callable[[], Awaitable[object]]) -> None:
    """One Twilio API request; its failure as a DeliveryError that says whether to retry."""
    _last_retry_after.set(None)
    try:
        await request()
    except TwilioRestException as exc:
        raise classify_twilio_error(exc.status, exc.code, str(exc.msg or "")) from exc
    except TwilioServiceException as exc:
        raise classify_twilio_error(exc.status, exc.code, exc.detail or exc.title) from exc
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
    except (TwilioException, ValueError) as exc:
        # A 2xx we cannot read may still have sent the text or placed the call: not again.
        raise DeliveryError(f"unexpected Twilio response: {exc}", retryable=False) from exc


def classify_twilio_error(status: int, code: int | None, text: str) -> DeliveryError:
    detail = truncate(f"HTTP {status} Twilio error {code}: {one_line(text)}", 300)
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        return DeliveryError(detail, retryable=True, retry_after=_last_retry_after.get())
    # 21211 invalid number, 21610 unsubscribed, 21614 not a mobile number, 20003 bad
    # credentials, and every other 4xx: the same request will fail again.
    return DeliveryError(detail, retryable=False)
