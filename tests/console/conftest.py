"""The console tests' fixtures: one real Alertmanager for the whole package (the silences'
upstream), and ``console``: the bridge process's application (bridge + console) on a fresh
database, with users of every role."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bridge.app import BRIDGE
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import T0, BridgeClient, Clock, make_config, notifiers
from tests.console.oidc_support import oidc_console as oidc_console_app
from tests.console.oncall_support import oncall_console as oncall_console_app
from tests.console.support import add_users, real_alertmanager
from tests.fakes.oidc import FakeOidcProvider


@pytest.fixture(scope="package")
def console_alertmanager() -> Iterator[str]:
    with real_alertmanager() as url:
        yield url


@pytest.fixture
async def console(db_url, aiohttp_client, console_alertmanager):
    chans = notifiers("slack", "email", "pagerduty", "sms")
    clock = Clock(T0)
    config = make_config(
        db_url,
        alertmanager_url=console_alertmanager,
        prometheus_url="http://127.0.0.1:9",  # nothing listens: "unreachable" is shown
        cooldown_seconds=600,
    )
    app = create_bridge_app(config, notifiers=chans, clock=clock, workers=False)
    client = BridgeClient(
        await aiohttp_client(app), app[BRIDGE], chans, clock, alertmanager=console_alertmanager
    )
    await add_users(client.bridge.storage, T0)
    return client


@pytest.fixture
async def oncall_console(db_url, aiohttp_client, console_alertmanager, tmp_path):
    """The ``console`` with an on-call file (``tests/console/oncall_support.py``)."""
    return await oncall_console_app(db_url, aiohttp_client, tmp_path, console_alertmanager)


@pytest.fixture
async def oidc_provider() -> AsyncIterator[FakeOidcProvider]:
    """A local OpenID provider (``tests/fakes/oidc.py``)."""
    fake = FakeOidcProvider()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def oidc_console(db_url, aiohttp_client, console_alertmanager, oidc_provider):
    """The ``console`` signing in with ``oidc_provider`` too (``tests/console/oidc_support.py``)."""
    return await oidc_console_app(db_url, aiohttp_client, console_alertmanager, oidc_provider)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where a browser test's screenshots go: ``$PASSITON_CONSOLE_SCREENSHOTS`` (``make
    screenshots``: docs/console/) or the test's temporary directory."""
    folder = Path(os.environ.get("PASSITON_CONSOLE_SCREENSHOTS", "") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="package")
def second_alertmanager() -> Iterator[str]:
    """Another real Alertmanager, not clustered with the first: silences are listed from and
    made in every one (``tests/console/silence_support.py``)."""
    with real_alertmanager() as url:
        yield url
