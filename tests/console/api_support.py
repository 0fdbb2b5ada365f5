"""Helpers of the API tests: tokens made by the same code as ``token create`` (on the test
clock), users limited to organizations, and calls with a Bearer token."""

from __future__ import annotations

from datetime import timedelta

from console.token_cli import create_token
from tests.console.support import PASSWORD_HASH


async def add_limited(console, name: str, role: str, organizations: tuple[str, ...]) -> None:
    await console.bridge.storage.console().upsert_user(
        name, PASSWORD_HASH, role, console.clock(), organizations
    )


async def token_for(
    console,
    user: str,
    *,
    name: str = "t",
    role: str | None = None,
    organizations: tuple[str, ...] | None = None,
    age: timedelta | None = None,
) -> str:
    token, _ = await create_token(
        console.bridge.storage, name, user, role, organizations, age, console.clock()
    )
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def get(console, path: str, token: str, status: int = 200):
    response = await console.get(f"/api/v1{path}", headers=bearer(token))
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


async def post(console, path: str, token: str, status: int = 200, **kwargs):
    response = await console.post(f"/api/v1{path}", headers=bearer(token), **kwargs)
    assert response.status == status, await response.text()
    return await response.json()
