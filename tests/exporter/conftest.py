"""The exporter's tests' shared fixtures."""

from __future__ import annotations

import shutil

import pytest

from tests.exporter.support import make_app


@pytest.fixture
async def exporter(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app)
    return app, client


@pytest.fixture(scope="session")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node (v18+) is required for the beacon.js tests: apt-get install nodejs")
    return path
