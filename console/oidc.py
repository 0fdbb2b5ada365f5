"""OpenID Connect for the console's sign-in: the provider's discovery and keys, the
authorization request (code flow with PKCE S256, state and nonce), the code's exchange and the
ID token's validation.

Built on authlib's framework-free OAuth 2 and OpenID pieces (the authorization URL and the
token request's encoding, client authentication, PKCE's S256 challenge, the ID token's claims:
``iss``, ``aud``, ``azp``, ``exp``, ``iat``, ``nonce``, ``at_hash``) and on joserfc, authlib's
JOSE library, for the signature against the provider's JWKS. (authlib 1.9 deprecates its own
``authlib.jose`` for joserfc, and its httpx integration for ``httpx2``; the console keeps its one
httpx client.) Only RS256 and ES256 signatures are accepted (and of them only what the
provider's discovery says it uses): ``alg: none`` and an HS256 token "signed" with a public
key are refused before any key is used.

Nothing here logs or returns a code or a token: errors carry a short reason and a sentence for
the person signing in.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from bridge.oidc_config import OidcConfig, check_endpoint
from passiton_common.settings import ConfigError

ALGORITHMS = ("RS256", "ES256")
METADATA_SECONDS = 3600.0  # discovery and keys are read again after this long
KEYS_REFRESH_SECONDS = 60.0  # an unknown key id reads the JWKS again at most this often
LEEWAY_SECONDS = 60  # clock skew allowed on exp, iat, nbf
TIMEOUT_SECONDS = 10.0
_ERROR_CODE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class OidcError(Exception):
    """A sign-in that cannot go on: the page's status, a short reason (audit, log) and what
    to tell the person (never a code or token)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


@dataclass(frozen=True)
class Flow:
    """One sign-in between the redirect to the provider and the way back: kept in a signed,
    short-lived cookie of the browser that started it."""

    state: str
    nonce: str
    verifier: str
    redirect_uri: str
    next: str

    @classmethod
    def new(cls, redirect_uri: str, next_path: str) -> Flow:
        return cls(
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(32),
            secrets.token_urlsafe(64),  # 86 characters: RFC 7636 wants 43-128
            redirect_uri,
            next_path,
        )

    def state_matches(self, state: str) -> bool:
        return secrets.compare_digest(self.state.encode(), state.encode())


@dataclass(frozen=True)
class Provider:
    """What the provider's discovery document says the console needs."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    algorithms: tuple[str, ...]
    auth_method: str  # client_secret_basic | client_secret_post | none


def code_error(value: object) -> str:
    """An OAuth error code from outside, fit to show and log (else ``unknown``)."""
    text = str(value or "")
    return text if _ERROR_CODE.match(text) else "unknown"


class OidcClient:
    """The console's client of one provider; discovery and keys cached in the process."""

    def __init__(self, config: OidcConfig, monotonic: Callable[[], float] = time.monotonic):
        self.config = config
        self._monotonic = monotonic
        self._provider: Provider | None = None
        self._provider_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0

    # -- the provider ----------------------------------------------------------------------
    async def _json(self, http: httpx.AsyncClient, url: str, what: str) -> dict[str, Any]:
        try:
            response = await http.get(
                url, timeout=TIMEOUT_SECONDS, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError:
            raise OidcError(502, what, f"The sign-in provider's {what} is unreachable.") from None
        if response.status_code != 200:
            raise OidcError(
                502, what, f"The sign-in provider's {what} answered HTTP {response.status_code}."
            )
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise OidcError(502, what, f"The sign-in provider's {what} is not a JSON object.")
        return data

    async def provider(self, http: httpx.AsyncClient) -> Provider:
        now = self._monotonic()
        if self._provider is not None and now - self._provider_at < METADATA_SECONDS:
            return self._provider
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        data = await self._json(http, url, "discovery")
        self._provider = self._read_discovery(data)
        self._provider_at = now
        self._keys = None  # read the keys of this discovery
        return self._provider

    def _read_discovery(self, data: dict[str, Any]) -> Provider:
        def bad(message: str) -> OidcError:
            return OidcError(502, "discovery", f"The sign-in provider's discovery: {message}.")

        # OpenID Connect Discovery 1.0, 4.3: the issuer must be exactly the one configured
        if data.get("issuer") != self.config.issuer:
            raise bad(f"its issuer is not {self.config.issuer}")
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = data.get(name)
            try:
                check_endpoint(name, value if isinstance(value, str) else "")
            except ConfigError as exc:
                raise bad(str(exc)) from None
            endpoints[name] = value
        offered = data.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(a for a in ALGORITHMS if isinstance(offered, list) and a in offered)
        if not algorithms:
            raise bad("it signs ID tokens with none of " + ", ".join(ALGORITHMS))
        methods = data.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if not self.config.client_secret:
            method = "none"
        elif "client_secret_basic" in methods:
            method = "client_secret_basic"
        elif "client_secret_post" in methods:
            method = "client_secret_post"
        else:
            raise bad("its token endpoint takes neither client_secret_basic nor _post")
        return Provider(
            self.config.issuer,
            endpoints["authorization_endpoint"],
            endpoints["token_endpoint"],
            endpoints["jwks_uri"],
            algorithms,
            method,
        )

    async def keys(self, http: httpx.AsyncClient, *, refresh: bool = False) -> KeySet:
        provider = await self.provider(http)
        now = self._monotonic()
        stale = now - self._keys_at >= (KEYS_REFRESH_SECONDS if refresh else METADATA_SECONDS)
        if self._keys is None or stale:
            data = await self._json(http, provider.jwks_uri, "keys")
            try:
                self._keys = KeySet.import_key_set(data)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError):
                raise OidcError(502, "keys", "The sign-in provider's keys are not valid.") from None
            self._keys_at = now
        return self._keys

    # -- the flow ----------------------------------------------------------------------------
    async def authorization_url(self, http: httpx.AsyncClient, flow: Flow) -> str:
        provider = await self.provider(http)
        return prepare_grant_uri(
            provider.authorization_endpoint,
            self.config.client_id,
            "code",
            redirect_uri=flow.redirect_uri,
            scope=" ".join(self.config.scopes),
            state=flow.state,
            nonce=flow.nonce,
            code_challenge=create_s256_code_challenge(flow.verifier),
            code_challenge_method="S256",
        )

    async def exchange(self, http: httpx.AsyncClient, flow: Flow, code: str) -> dict[str, Any]:
        """The token endpoint's answer for the code (with the flow's PKCE verifier)."""
        provider = await self.provider(http)
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=flow.redirect_uri,
            code_verifier=flow.verifier,
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        auth = ClientAuth(self.config.client_id, self.config.client_secret, provider.auth_method)
        url, headers, body = auth.prepare("POST", provider.token_endpoint, headers, body)
        try:
            response = await http.post(url, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError:
            raise OidcError(502, "token_endpoint", "The sign-in provider is unreachable.") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if 400 <= response.status_code < 500:
            error = code_error(data.get("error") if isinstance(data, dict) else "")
            raise OidcError(
                400,
                "token_endpoint",
                f"The sign-in provider refused the sign-in's code ({error}). Start again.",
            )
        if response.status_code != 200 or not isinstance(data, dict):
            raise OidcError(
                502,
                "token_endpoint",
                f"The sign-in provider's token endpoint answered HTTP {response.status_code}.",
            )
        if not isinstance(data.get("id_token"), str):
            raise OidcError(502, "token_endpoint", "The sign-in provider sent no ID token.")
        return data

    async def claims(
        self, http: httpx.AsyncClient, flow: Flow, tokens: dict[str, Any], now: float
    ) -> dict[str, Any]:
        """The ID token's claims once its signature (the provider's keys, an accepted
        algorithm) and its claims (issuer, audience, expiry, nonce...) hold at ``now``."""
        provider = await self.provider(http)
        registry = JWSRegistry(algorithms=list(provider.algorithms), strict_check_header=False)
        id_token = tokens["id_token"]
        try:
            try:
                token = jwt.decode(id_token, await self.keys(http), registry=registry)
            except InvalidKeyIdError:
                # the provider rotated its keys: read them again (at most once a minute)
                token = jwt.decode(id_token, await self.keys(http, refresh=True), registry=registry)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise OidcError(
                403, "id_token", f"The sign-in provider's ID token is not valid ({_name(exc)})."
            ) from None
        access_token = tokens.get("access_token")
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": provider.issuer},
                "aud": {"essential": True, "value": self.config.client_id},
                "sub": {"essential": True},
                "nonce": {"essential": True},
            },
            {
                "nonce": flow.nonce,
                "client_id": self.config.client_id,
                "access_token": access_token if isinstance(access_token, str) else None,
            },
        )
        try:
            claims.validate(now=int(now), leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcError(
                403, "id_token", f"The sign-in provider's ID token is not valid ({_name(exc)})."
            ) from None
        return dict(claims)


def _name(exc: Exception) -> str:
    """What failed, without the token: joserfc's error code and the claim it names."""
    error = getattr(exc, "error", "") or type(exc).__name__
    description = getattr(exc, "description", "") or ""
    text = f"{error}: {description}" if description else str(error)
    return text[:120]
