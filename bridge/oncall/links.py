"""Signed, expiring, single-use links in e-mail pages (``/v1/ack/{token}`` on the public listener).

The token names the incident, the person it was sent to, when it expires and a random nonce,
signed with a key derived from the bridge's secret (itsdangerous, HMAC-SHA256). A GET only shows
a confirmation page, so that mail scanners that follow links change nothing; the POST acts, and
records the nonce so that the same link cannot act twice (``inbound_requests``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

DEFAULT_TTL = timedelta(hours=12)
MAX_TOKEN_LENGTH = 400


@dataclass(frozen=True)
class AckLink:
    incident_id: int
    person_id: str
    expires_at: datetime
    nonce: str


class AckLinks:
    def __init__(
        self,
        secret: str,
        public_url: str,
        clock: Callable[[], datetime],
        ttl: timedelta = DEFAULT_TTL,
    ) -> None:
        # A key of its own: a link never verifies anything else signed with the same secret.
        key = hmac.new(secret.encode(), b"passiton-monitoring ack links v1", hashlib.sha256)
        self._serializer = URLSafeSerializer(key.hexdigest(), salt="ack-link")
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.ttl = ttl

    def token(self, incident_id: int, person_id: str) -> str:
        expires = int((self.clock() + self.ttl).timestamp())
        return str(self._serializer.dumps([incident_id, person_id, expires, secrets.token_hex(12)]))

    def url(self, incident_id: int, person_id: str) -> str:
        return f"{self.public_url}/v1/ack/{self.token(incident_id, person_id)}"

    def verify(self, token: str) -> AckLink | None:
        """The link's content when the signature holds and it has not expired; else None."""
        if len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            data = self._serializer.loads(token)
        except BadSignature:
            return None
        if not (isinstance(data, list) and len(data) == 4):
            return None
        incident_id, person_id, expires, nonce = data
        if not (
            isinstance(incident_id, int)
            and isinstance(person_id, str)
            and isinstance(expires, int)
            and isinstance(nonce, str)
        ):
            return None
        expires_at = datetime.fromtimestamp(expires, UTC)
        if self.clock() >= expires_at:
            return None
        return AckLink(incident_id, person_id, expires_at, nonce)
