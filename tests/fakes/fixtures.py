"""pytest fixtures starting each fake; registered in tests/conftest.py via pytest_plugins."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.push import FakePushService
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSMTP, TlsMode
from tests.fakes.twilio import FakeTwilio


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def fake_pagerduty() -> AsyncIterator[FakePagerDuty]:
    async with FakePagerDuty() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def fake_twilio() -> AsyncIterator[FakeTwilio]:
    async with FakeTwilio() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def fake_smtp() -> AsyncIterator[FakeSMTP]:
    async with FakeSMTP() as server:
        yield server


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    """A throw-away certificate authority; its certificate is valid for 127.0.0.1/localhost."""
    return trustme.CA()


@pytest.fixture(scope="session")
def server_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls_ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


@pytest.fixture(scope="session")
def client_ssl_context(tls_ca: trustme.CA) -> ssl.SSLContext:
    """A client context that trusts ``tls_ca`` (and nothing else)."""
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    return context


@pytest.fixture
async def fake_push(server_ssl_context: ssl.SSLContext) -> AsyncIterator[FakePushService]:
    """A Web Push service over https (trusted by ``client_ssl_context``)."""
    async with FakePushService(ssl_context=server_ssl_context) as server:
        yield server  # type: ignore[misc]


@pytest.fixture
async def fake_smtp_factory(
    server_ssl_context: ssl.SSLContext,
) -> AsyncIterator[Callable[..., Awaitable[FakeSMTP]]]:
    """``await fake_smtp_factory(tls="starttls", credentials=("u", "p"))`` → a started server."""
    started: list[FakeSMTP] = []

    async def make(tls: TlsMode = "none", credentials: tuple[str, str] | None = None) -> FakeSMTP:
        server = FakeSMTP(
            tls=tls,
            server_ssl=server_ssl_context if tls != "none" else None,
            credentials=credentials,
        )
        await server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        await server.stop()
