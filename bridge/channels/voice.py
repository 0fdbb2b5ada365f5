"""Voice calls through Twilio's Calls API: the incident read aloud, "press 1 to acknowledge, 2 to
resolve", answered by ``<Gather>`` to the bridge's public listener (``/v1/twilio/voice``).

Only on-call escalation steps call (``via: voice``); the severity table never does. The TwiML is
built with the ``twilio`` library's ``VoiceResponse``, which escapes the text for XML; the spoken
text is the incident's title, kept short and free of anything a speech engine would spell out.
"""

from __future__ import annotations

from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from bridge.channels.base import DeliveryError, deliver_each
from bridge.channels.config import DEFAULT_TWILIO_API_URL, is_e164
from bridge.channels.sms import twilio_call, twilio_client
from bridge.channels.text import one_line, truncate
from bridge.model import Message

MAX_SPOKEN = 300
GATHER_SECONDS = 10


def render_twiml(message: Message, public_url: str | None) -> str:
    """The call: what happened, and (with a public listener) the keys to answer."""
    response = VoiceResponse()
    title = truncate(one_line(message.incident_title or message.title), MAX_SPOKEN, "")
    incident = f"incident {message.incident_id}" if message.incident_id is not None else "an alert"
    intro = f"This is PassItOn monitoring. You are on call for {incident}, {message.severity}: "
    if public_url and message.incident_id is not None:
        query = urlencode({"incident": message.incident_id})
        gather = response.gather(
            input="dtmf",
            num_digits=1,
            timeout=GATHER_SECONDS,
            action=f"{public_url.rstrip('/')}/v1/twilio/voice?{query}",
            method="POST",
        )
        gather.say(intro + title + ". Press 1 to acknowledge, 2 to resolve.")
        response.say("No key was pressed. The incident is not acknowledged. Goodbye.")
    else:
        response.say(intro + title + ". Acknowledge it in the console.")
    return str(response)


class VoiceNotifier:
    name = "voice"

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        public_url: str | None = None,
        api_url: str = DEFAULT_TWILIO_API_URL,
        timeout: float = 10.0,
    ) -> None:
        self.from_number = from_number
        self.public_url = public_url
        self.http_client, self.client = twilio_client(account_sid, auth_token, api_url, timeout)

    def __repr__(self) -> str:
        return f"VoiceNotifier(from={self.from_number!r}, api_url={self.http_client.base_url!r})"

    async def notify(self, message: Message) -> None:
        if not message.recipients:
            raise DeliveryError("a call needs a number (an on-call voice contact)", retryable=False)
        twiml = render_twiml(message, self.public_url)
        await deliver_each(message.recipients, lambda to: self._call(to, twiml), what="to")

    async def _call(self, to: str, twiml: str) -> None:
        if not is_e164(to):
            raise DeliveryError("not an E.164 phone number", retryable=False)
        await twilio_call(
            lambda: self.client.calls.create_async(to=to, from_=self.from_number, twiml=twiml)
        )

    async def aclose(self) -> None:
        await self.http_client.close()
