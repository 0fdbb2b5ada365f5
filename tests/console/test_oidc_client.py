"""``console/oidc.py`` against the local provider (``tests/fakes/oidc.py``) over real HTTP,
without the console around it: what discovery must say, and keys rotated at the provider."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bridge.oidc_config import OidcConfig
from console.oidc import KEYS_REFRESH_SECONDS, Flow, OidcClient, OidcError
from passiton_common.http_client import async_client
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client(provider, **changes) -> tuple[OidcClient, Monotonic]:
    clock = Monotonic()
    config = OidcConfig(issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    return OidcClient(replace(config, **changes), clock), clock


def id_token(provider, flow: Flow) -> dict[str, str]:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "s", "iat": now, "exp": now + 60}
    return {"id_token": provider.mint(claims | {"nonce": flow.nonce})}


async def test_discovery_must_name_the_configured_issuer_and_an_accepted_algorithm(oidc_provider):
    async with async_client() as http:
        wrong, _ = client(oidc_provider, issuer=oidc_provider.issuer + "/")
        with pytest.raises(OidcError) as raised:
            await wrong.provider(http)
        assert (raised.value.status, raised.value.reason) == (502, "discovery")
        assert "its issuer is not" in raised.value.message

        oidc_provider.algorithms = ["HS256", "none"]
        weak, _ = client(oidc_provider)
        with pytest.raises(OidcError) as raised:
            await weak.provider(http)
        assert "signs ID tokens with none of RS256, ES256" in raised.value.message

        oidc_provider.algorithms = ["RS256"]
        public, _ = client(oidc_provider, client_secret="")
        assert (await public.provider(http)).auth_method == "none"


async def test_keys_rotated_at_the_provider_are_read_again_at_most_once_a_minute(oidc_provider):
    flow = Flow.new("http://127.0.0.1/console/oidc/callback", "/console/")
    oidc, clock = client(oidc_provider)
    async with async_client() as http:
        assert (await oidc.claims(http, flow, id_token(oidc_provider, flow), time.time()))["sub"]
        jwks_reads = sum(r.path == "/jwks" for r in oidc_provider.requests)
        # the provider rotates: a new key under a new kid
        oidc_provider.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        oidc_provider.kid = "test-key-2"
        clock.now += 1  # within the minute: the keys are not read again (no amplification)
        with pytest.raises(OidcError) as raised:
            await oidc.claims(http, flow, id_token(oidc_provider, flow), time.time())
        assert raised.value.reason == "id_token"
        assert sum(r.path == "/jwks" for r in oidc_provider.requests) == jwks_reads
        clock.now += KEYS_REFRESH_SECONDS
        assert (await oidc.claims(http, flow, id_token(oidc_provider, flow), time.time()))["sub"]
        assert sum(r.path == "/jwks" for r in oidc_provider.requests) == jwks_reads + 1
