"""A local OpenID Connect provider: discovery, a JWKS with a real RSA key, an authorization
endpoint that signs one configured test user in without asking (auto-consent), and a token
endpoint that checks the code (once), the client's authentication, the redirect URI and the
PKCE verifier before it answers with an RS256-signed ID token.

Its JWS is built here by hand with ``cryptography`` (not with the library the console uses),
so a bug there cannot cancel out. ``sign_with`` and ``tamper`` make the hostile tokens the
console must refuse: another key under the same key id, ``alg: none``, HS256 keyed with the
public key (algorithm confusion), and any claim changed (nonce, audience, expiry...).
Refusals at the token endpoint are kept in ``refusals`` by reason.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes._server import FakeServer

CLIENT_ID = "passiton-console"
CLIENT_SECRET = "provider-issued-secret-0123456789"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def s256(verifier: str) -> str:
    return b64(hashlib.sha256(verifier.encode()).digest())


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str
    claims: dict[str, Any]


class FakeOidcProvider(FakeServer):
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "test-key-1"
        self.algorithms = ["RS256"]  # what discovery says the ID tokens are signed with
        # the user /authorize signs in (auto-consent)
        self.user: dict[str, Any] = {
            "sub": "user-0001",
            "email": "ada@example.org",
            "email_verified": True,
            "preferred_username": "ada",
            "name": "Ada Lovelace",
            "groups": ["engineers"],
            "organizations": ["org-a"],
        }
        self.deny = ""  # an OAuth error code /authorize answers with instead of a code
        self.sign_with = "key"  # key | other | none | hs256
        self.tamper: Callable[[dict[str, Any], dict[str, Any]], None] | None = None
        self.grants: dict[str, Grant] = {}
        self.used: set[str] = set()
        self.refusals: list[str] = []

    @property
    def issuer(self) -> str:
        return self.base_url

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/.well-known/openid-configuration", self._discovery),
            web.get("/jwks", self._jwks),
            web.get("/authorize", self._authorize),
            web.post("/token", self._token),
        ]

    # -- signing --------------------------------------------------------------------------
    def mint(self, claims: dict[str, Any], header: dict[str, Any] | None = None) -> str:
        """A compact JWS of ``claims`` as ``sign_with`` says."""
        alg = {"none": "none", "hs256": "HS256"}.get(self.sign_with, "RS256")
        head = {"alg": alg, "typ": "JWT", "kid": self.kid, **(header or {})}
        signing_input = f"{b64(json.dumps(head).encode())}.{b64(json.dumps(claims).encode())}"
        data = signing_input.encode()
        if self.sign_with == "none":
            signature = b""
        elif self.sign_with == "hs256":
            # the classic confusion: the RSA public key (PEM) used as an HMAC secret
            pem = self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            signature = hmac.new(pem, data, hashlib.sha256).digest()
        else:
            key = self.other_key if self.sign_with == "other" else self.key
            signature = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": _int(numbers.n),
            "e": _int(numbers.e),
        }

    # -- endpoints -------------------------------------------------------------------------
    async def _discovery(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.base_url}/authorize",
                "token_endpoint": f"{self.base_url}/token",
                "jwks_uri": f"{self.base_url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": self.algorithms,
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.json_response({"keys": [self.jwk()]})

    async def _authorize(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        q = request.query
        if q.get("client_id") != self.client_id:
            return web.Response(status=400, text="unknown client_id")
        redirect_uri = q.get("redirect_uri", "")
        if not redirect_uri.startswith("http://127.0.0.1:") or not redirect_uri.endswith(
            "/console/oidc/callback"
        ):
            return web.Response(status=400, text="redirect_uri not registered")

        def back(**params: str) -> web.StreamResponse:
            state = q.get("state")
            query = urlencode({**params, **({"state": state} if state else {})})
            raise web.HTTPFound(f"{redirect_uri}?{query}")

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in q.get("scope", "").split():
            return back(error="invalid_scope")
        if q.get("code_challenge_method") != "S256" or len(q.get("code_challenge", "")) != 43:
            return back(error="invalid_request", error_description="PKCE S256 is required")
        if self.deny:
            return back(error=self.deny, error_description="The user said no.")
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            self.client_id, redirect_uri, q["code_challenge"], q.get("nonce", ""), dict(self.user)
        )
        return back(code=code)

    def _refuse(self, reason: str, error: str = "invalid_grant", status: int = 400):
        self.refusals.append(reason)
        return web.json_response({"error": error, "error_description": reason}, status=status)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        scripted = await self.scripted()
        if scripted is not None:
            return scripted
        form = recorded.form()
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret", "")
        scheme, _, value = recorded.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            client_id, _, client_secret = base64.b64decode(value).decode().partition(":")
        if not (
            hmac.compare_digest(client_id, self.client_id)
            and hmac.compare_digest(client_secret, self.client_secret)
        ):
            return self._refuse("client authentication failed", "invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return self._refuse("grant_type", "unsupported_grant_type")
        code = form.get("code", "")
        if code in self.used:
            return self._refuse("code already used")
        grant = self.grants.pop(code, None)
        if grant is None:
            return self._refuse("unknown code")
        self.used.add(code)
        if grant.redirect_uri != form.get("redirect_uri"):
            return self._refuse("redirect_uri differs")
        if s256(form.get("code_verifier", "")) != grant.challenge:
            return self._refuse("PKCE verifier does not match")
        now = int(self.clock())
        access_token = secrets.token_urlsafe(32)
        claims = {
            **grant.claims,
            "iss": self.issuer,
            "aud": grant.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            "at_hash": b64(hashlib.sha256(access_token.encode()).digest()[:16]),
        }
        header: dict[str, Any] = {}
        if self.tamper is not None:
            self.tamper(header, claims)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.mint(claims, header),
            },
            headers={"Cache-Control": "no-store"},
        )
