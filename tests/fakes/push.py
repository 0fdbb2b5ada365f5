"""A fake Web Push service (RFC 8030), as a browser vendor's push service answers a server.

``subscribe()`` plays the browser: it makes a P-256 key pair and a 16-byte auth secret and
returns the ``PushSubscription`` JSON (endpoint, keys) the console stores. A ``POST`` to an
endpoint is checked as a push service checks it, then decrypted with the subscription's
private key, as the browser would:

- ``Authorization: vapid t=<JWT>, k=<public key>``: the JWT verifies (ES256) with ``k``, its
  ``aud`` is the endpoint's origin, its ``exp`` is in the future and within 24 hours, its
  ``sub`` is ``mailto:`` or ``https:``; when the subscription was made with an
  ``application_server_key``, ``k`` must be that key (403 otherwise, like FCM);
- ``Content-Encoding: aes128gcm`` and a ``TTL`` header (400 without);
- the body decrypts (RFC 8291, ``http_ece``) with the subscription's keys (400 otherwise).

Answers 201 with a ``Location`` (the message), 404 for an endpoint it never issued, 410 for
one ``expire()`` ended; ``script(...)`` queues other answers (429 with ``Retry-After``, 5xx).
``messages`` holds what was delivered, decrypted, with the headers that came with it.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.fakes._server import FakeServer


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class BrowserSubscription:
    id: str
    private_key: ec.EllipticCurvePrivateKey
    auth: bytes
    application_server_key: str | None
    expired: bool = False

    @property
    def p256dh(self) -> str:
        point = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return _b64(point)


@dataclass(frozen=True)
class PushedMessage:
    subscription: str
    payload: bytes  # decrypted
    headers: dict[str, str] = field(default_factory=dict)
    claims: dict[str, Any] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.payload)


class FakePushService(FakeServer):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subscriptions: dict[str, BrowserSubscription] = {}
        self.messages: list[PushedMessage] = []
        self.refusals: list[tuple[int, str]] = []  # what was refused, and why

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/push/{id}", self._push)]

    def subscribe(self, application_server_key: str | None = None) -> dict[str, Any]:
        """A new browser subscription; the JSON ``PushSubscription.toJSON()`` gives."""
        ident = secrets.token_urlsafe(12)
        sub = BrowserSubscription(
            ident,
            ec.generate_private_key(ec.SECP256R1()),
            secrets.token_bytes(16),
            application_server_key,
        )
        self.subscriptions[ident] = sub
        return {
            "endpoint": f"{self.base_url}/push/{ident}",
            "keys": {"p256dh": sub.p256dh, "auth": _b64(sub.auth)},
        }

    def expire(self, endpoint: str) -> None:
        """The browser unsubscribed: the endpoint answers 410 Gone from now on."""
        self.subscriptions[endpoint.rsplit("/", 1)[1]].expired = True

    def _refuse(self, status: int, reason: str) -> web.Response:
        self.refusals.append((status, reason))
        return web.Response(status=status, text=reason)

    async def _push(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        answer = await self.scripted()
        if answer is not None:
            return answer
        sub = self.subscriptions.get(request.match_info["id"])
        if sub is None:
            return self._refuse(404, "no such subscription")
        if sub.expired:
            return self._refuse(410, "subscription expired")
        claims, problem = self._vapid(recorded.headers, sub)
        if problem:
            return self._refuse(403 if "key" in problem else 401, problem)
        if recorded.headers.get("content-encoding") != "aes128gcm":
            return self._refuse(400, "Content-Encoding must be aes128gcm")
        if not recorded.headers.get("ttl", "").isdigit():
            return self._refuse(400, "TTL header missing")
        try:
            payload = http_ece.decrypt(
                recorded.body,
                private_key=sub.private_key,
                auth_secret=sub.auth,
                version="aes128gcm",
            )
        except Exception as exc:  # http_ece raises its own and cryptography's errors
            return self._refuse(400, f"cannot decrypt: {type(exc).__name__}")
        self.messages.append(PushedMessage(sub.id, payload, recorded.headers, claims))
        location = f"{self.base_url}/message/{secrets.token_urlsafe(8)}"
        return web.Response(status=201, headers={"Location": location})

    def _vapid(
        self, headers: dict[str, str], sub: BrowserSubscription
    ) -> tuple[dict[str, Any], str]:
        scheme, _, params = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            return {}, "Authorization: vapid t=…, k=… required"
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        token, key = fields.get("t", ""), fields.get("k", "")
        if sub.application_server_key is not None and key != sub.application_server_key:
            return {}, "VAPID key differs from the subscription's applicationServerKey"
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), _unb64(key))
            claims = verify_es256(token, public)
        except ValueError as exc:
            return {}, f"VAPID JWT rejected: {exc}"
        if claims.get("aud") != self.base_url:
            return {}, f"VAPID JWT aud {claims.get('aud')!r} is not {self.base_url!r}"
        if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
            return {}, "VAPID JWT expired (or no exp)"
        if claims["exp"] > time.time() + 24 * 3600:
            return {}, "VAPID JWT exp more than 24 hours ahead"
        if not str(claims.get("sub", "")).startswith(("mailto:", "https:")):
            return {}, "VAPID JWT sub must be mailto: or https:"
        return claims, ""


def verify_es256(token: str, public: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The claims of a compact JWS signed ES256 by ``public`` (RFC 7515/7518); ValueError when
    the header, the encoding or the signature is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a compact JWS")
    header = json.loads(_unb64(parts[0]))
    if header.get("alg") != "ES256":
        raise ValueError(f"alg {header.get('alg')!r} is not ES256")
    signature = _unb64(parts[2])
    if len(signature) != 64:
        raise ValueError("an ES256 signature is 64 bytes (r || s)")
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("bad signature") from None
    claims = json.loads(_unb64(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("claims are not an object")
    return claims
