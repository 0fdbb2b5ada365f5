"""What the OpenID sign-in tests share: the ``console`` with a local OpenID provider
(``tests/fakes/oidc.py``) as its ``OIDC_ISSUER``, and the sign-in walked over real HTTP the
way a browser walks it: the console's start, the provider's authorization endpoint (which
redirects back with a code), the console's callback."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp

from bridge.app import BRIDGE
from bridge.oidc_config import OidcConfig, parse_role_map
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import T0, BridgeClient, Clock, make_config, notifiers
from tests.console.support import add_users
from tests.fakes.oidc import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider

ROLE_MAP = "oncall-admins=admin,engineers=responder,watchers=viewer"


@dataclass
class Leg:
    """The way back from the provider: the callback's query (code, state or error)."""

    query: dict[str, str]


def oidc_config(provider: FakeOidcProvider, **overrides: Any) -> OidcConfig:
    config = OidcConfig(
        issuer=provider.issuer,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        role_claim="groups",
        role_map=parse_role_map(ROLE_MAP),
        organizations_claim="organizations",
        provider_name="Local provider",
    )
    return replace(config, **overrides)


async def oidc_console(db_url, aiohttp_client, alertmanager: str, provider: FakeOidcProvider):
    """The bridge process's app (bridge + console + API) signing in with ``provider``, on
    the test clock (the provider's too), with the local users of every role."""
    clock = Clock(T0)
    provider.clock = lambda: clock().timestamp()
    config = make_config(
        db_url,
        alertmanager_url=alertmanager,
        prometheus_url="http://127.0.0.1:9",
        oidc=oidc_config(provider),
    )
    chans = notifiers("slack", "email")
    app = create_bridge_app(config, notifiers=chans, clock=clock, workers=False)
    client = BridgeClient(
        await aiohttp_client(app), app[BRIDGE], chans, clock, alertmanager=alertmanager
    )
    await add_users(client.bridge.storage, T0)
    return client


async def start(console, next_path: str = "") -> str:
    """The console's start: the provider's authorization URL it redirects to."""
    query = f"?next={next_path}" if next_path else ""
    response = await console.get(f"/console/oidc/start{query}", allow_redirects=False)
    assert response.status == 303, await response.text()
    return response.headers["Location"]


async def authorize(url: str) -> Leg:
    """The provider's authorization endpoint, as the browser follows it (auto-consent)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, allow_redirects=False) as response,
    ):
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert urlsplit(location).path == "/console/oidc/callback"
    return Leg({k: v[0] for k, v in parse_qs(urlsplit(location).query).items()})


async def callback(console, leg: Leg | dict[str, str]):
    query = leg.query if isinstance(leg, Leg) else leg
    return await console.get("/console/oidc/callback", params=query, allow_redirects=False)


async def sign_in(console, next_path: str = ""):
    """The whole walk; the callback's response."""
    return await callback(console, await authorize(await start(console, next_path)))
