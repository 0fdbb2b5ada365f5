"""Personal API tokens: made by ``token create`` (hashed, shown once), used, expired on the
test clock, revoked; the attacks on the API's authentication (no, wrong, malformed, revoked or
expired tokens, a console cookie instead of a token, guessing until throttled)."""

from __future__ import annotations

import argparse
import asyncio
import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from bridge.storage import Storage
from bridge.storage.migrations import load_migrations
from console.api.common import FAILURES_PER_ADDRESS
from console.token_cli import (
    TokenProblem,
    cmd_token,
    configure_token,
    create_token,
    revoke_token,
)
from tests.bridge.support import make_config
from tests.console.api_support import add_limited, bearer, get, token_for
from tests.console.support import PASSWORD_HASH, login, outage


async def _unauthorized(console, headers: dict[str, str]) -> str:
    response = await console.get("/api/v1/incidents", headers=headers)
    assert response.status == 401, await response.text()
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return (await response.json())["error"]


async def test_a_token_is_stored_hashed_and_works_until_it_expires(console):
    token = await token_for(console, "viewer", age=timedelta(days=30))
    assert token.startswith("pio_")
    assert len(token) == 47
    rows = await console.bridge.storage.query("SELECT * FROM api_tokens")
    assert len(rows) == 1
    row = rows[0]
    assert row["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token not in str(row.values())  # only the hash and a short prefix
    assert row["prefix"] == token[:10]
    assert row["last_used_at"] is None
    assert (await get(console, "/incidents", token))["incidents"] == []
    used = await console.bridge.storage.query("SELECT last_used_at FROM api_tokens")
    assert used[0]["last_used_at"] == console.clock()
    console.clock.advance(30 * 86400 - 1)
    await get(console, "/incidents", token)
    console.clock.advance(1)  # expires_at reached
    assert "expired" in await _unauthorized(console, bearer(token))


async def test_a_revoked_token_is_refused_and_its_name_can_be_used_again(console):
    token = await token_for(console, "responder", name="ci")
    await get(console, "/incidents", token)
    assert await revoke_token(console.bridge.storage, "ci", "", console.clock()) == "responder"
    await _unauthorized(console, bearer(token))
    with pytest.raises(TokenProblem, match="no live token"):
        await revoke_token(console.bridge.storage, "ci", "", console.clock())
    again = await token_for(console, "responder", name="ci")
    await get(console, "/incidents", again)


async def test_a_token_cannot_exceed_its_user(console):
    storage = console.bridge.storage
    await add_limited(console, "limited", "responder", ("org-a", "org-b"))
    with pytest.raises(TokenProblem, match="above"):
        await create_token(storage, "t", "viewer", "admin", None, None, console.clock())
    with pytest.raises(TokenProblem, match="does not see org-c"):
        await create_token(storage, "t", "limited", None, ("org-c",), None, console.clock())
    with pytest.raises(TokenProblem, match="no console user"):
        await create_token(storage, "t", "nobody", None, None, None, console.clock())
    _, row = await create_token(storage, "t", "limited", None, None, None, console.clock())
    assert (row.role, row.organizations) == ("responder", ("org-a", "org-b"))
    with pytest.raises(TokenProblem, match="already has"):
        await create_token(storage, "t", "limited", None, None, None, console.clock())
    _, row = await create_token(
        storage, "u", "limited", "viewer", ("org-b",), None, console.clock()
    )
    assert (row.role, row.organizations) == ("viewer", ("org-b",))


async def test_a_user_lowered_later_lowers_their_tokens(console):
    token = await token_for(console, "responder")
    await outage(console)
    incident = (await get(console, "/incidents", token))["incidents"][0]["id"]
    await add_limited(console, "responder", "viewer", ("org-w",))
    response = await console.post(
        f"/api/v1/incidents/{incident}/acknowledge", headers=bearer(token)
    )
    assert response.status == 403
    listed = (await get(console, "/incidents", token))["incidents"]
    assert [i["organizations"] for i in listed] == [["org-w"]]


async def test_attacks_on_authentication_get_401_and_no_data(console):
    await outage(console)
    real = await token_for(console, "admin")
    assert "required" in await _unauthorized(console, {})
    await _unauthorized(console, {"Authorization": "Basic YWRtaW46eA=="})
    await _unauthorized(console, {"Authorization": "Bearer "})
    await _unauthorized(console, {"Authorization": "Bearer pio_" + "A" * 43})  # well-formed
    await _unauthorized(console, {"Authorization": "Bearer " + real[:-1]})  # one char short
    await _unauthorized(console, {"Authorization": "Bearer " + real[:-1] + "'"})
    await _unauthorized(console, {"Authorization": "Bearer ' OR 1=1 --"})
    await _unauthorized(console, {"Authorization": "Bearer " + "x" * 5000})
    # the hash itself is not a token
    stored = (await console.bridge.storage.query("SELECT token_hash FROM api_tokens"))[0]
    await _unauthorized(console, {"Authorization": "Bearer " + stored["token_hash"]})


async def test_a_console_session_cookie_does_not_authenticate_the_api(console):
    await login(console, "admin")
    assert console.session.cookie_jar.filter_cookies(console.make_url("/console/"))
    response = await console.get("/api/v1/incidents")
    assert response.status == 401
    # nor a cookie sent by hand to the API's path
    cookies = {c.key: c.value for c in console.session.cookie_jar}
    response = await console.get("/api/v1/incidents", cookies=cookies)
    assert response.status == 401


async def test_failed_tokens_are_throttled_per_address(console):
    good = await token_for(console, "viewer")
    wrong = bearer("pio_" + "B" * 43)
    for _ in range(FAILURES_PER_ADDRESS):
        assert (await console.get("/api/v1/incidents", headers=wrong)).status == 401
    refused = await console.get("/api/v1/incidents", headers=wrong)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    # the address is throttled before any token is looked up, the good one too
    assert (await console.get("/api/v1/incidents", headers=bearer(good))).status == 429


async def test_missing_tokens_are_not_counted_as_guesses(console):
    good = await token_for(console, "viewer")
    for _ in range(FAILURES_PER_ADDRESS + 5):
        assert (await console.get("/api/v1/incidents")).status == 401
    await get(console, "/incidents", good)


def test_the_token_command_creates_lists_and_revokes(db_url, capsys):
    async def add_user() -> None:
        storage = Storage(db_url)
        await storage.open()
        try:
            await storage.console().upsert_user(
                "alice", PASSWORD_HASH, "responder", datetime.now(UTC), ("org-a",)
            )
        finally:
            await storage.close()

    asyncio.run(add_user())
    config = make_config(db_url)
    parser = argparse.ArgumentParser()
    configure_token(parser)

    def run(*argv: str) -> int:
        return cmd_token(parser.parse_args(list(argv)), config)

    assert run("create", "ci", "--user", "alice", "--expires", "30d") == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("pio_")
    assert "\n" not in token
    assert "shown once" in err
    assert "org-a" in err
    assert run("create", "ci", "--user", "alice") == 2
    assert "already has" in capsys.readouterr().err
    assert run("create", "x", "--user", "alice", "--role", "admin") == 2
    assert "above" in capsys.readouterr().err
    assert run("create", "x", "--user", "alice", "--expires", "soon") == 2
    assert "30d" in capsys.readouterr().err
    assert run("create", "x", "--user", "alice", "--organizations", "org-z") == 2
    assert run("list") == 0
    listing = capsys.readouterr().out
    assert "alice\tci\t" + token[:10] in listing
    assert "live" in listing
    assert token not in listing
    assert run("revoke", "ci") == 0
    assert run("list", "--user", "alice") == 0
    assert "revoked" in capsys.readouterr().out
    assert run("revoke", "ci") == 2


async def test_the_tokens_migration_is_idempotent_and_under_row_level_security(console):
    storage = console.bridge.storage
    await token_for(console, "viewer")
    migration = next(m for m in load_migrations() if m.version == "0011_api_tokens")
    await storage.execute(migration.sql)
    rows = await storage.query("SELECT relrowsecurity FROM pg_class WHERE relname = 'api_tokens'")
    assert rows == [{"relrowsecurity": True}]
    assert len(await storage.query("SELECT id FROM api_tokens")) == 1
