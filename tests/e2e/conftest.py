"""Fixtures of the end-to-end tests: one fresh PostgreSQL database, fake Slack and PagerDuty and
one stack per test module, shared by the tests of that module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import PAGERDUTY_KEY, STRIPE_SECRET, UpStack, fresh_database
from tests.fakes import FakePagerDuty, FakeSlack


@pytest.fixture(scope="module")
def e2e_database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSlack]:
    server = FakeSlack()
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(scope="module")
def pagerduty() -> Iterator[FakePagerDuty]:
    server = FakePagerDuty()
    server.start_in_thread()
    yield server
    server.stop_thread()


@pytest.fixture(scope="module")
def channel_env(slack: FakeSlack, pagerduty: FakePagerDuty) -> dict[str, str]:
    """The bridge's channels pointed at the fakes (Slack and PagerDuty; nothing else)."""
    return {
        "SLACK_WEBHOOK_URL": slack.webhook_url,
        "PAGERDUTY_INTEGRATION_KEY": PAGERDUTY_KEY,
        "PAGERDUTY_EVENTS_URL": pagerduty.events_url,
    }


def stack_env(database_url: str, channels: dict[str, str]) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
        "BRIDGE_DEADMAN_AFTER_SECONDS": "15",
        "LOG_LEVEL": "INFO",
        **channels,
    }


@pytest.fixture(scope="module")
def up_stack(
    tmp_path_factory: pytest.TempPathFactory, e2e_database: str, channel_env: dict[str, str]
) -> Iterator[UpStack]:
    state: Path = tmp_path_factory.mktemp("passiton-state")
    stack = UpStack.start(state, stack_env(e2e_database, channel_env))
    yield stack
    stack.stop()
