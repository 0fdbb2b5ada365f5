"""Attacks on the console's login (issue 18): guessing passwords as fast as the bridge answers,
stalling the event loop with argon2, guessing unseen, weak passwords."""

from __future__ import annotations

import argparse
import threading

import aiohttp
import pytest

from bridge.app import BRIDGE
from console import auth
from console.cli import cmd_user
from console.throttle import PAIR_LIMIT, LoginThrottle
from passiton_monitoring.bridge_process import create_bridge_app
from tests.abuse.test_abuse_console import console  # noqa: F401 - the fixture
from tests.bridge.support import T0, Clock, make_config
from tests.console.support import PASSWORD, add_users, csrf_of, login


async def _attempt(client, username: str, password: str):
    token = csrf_of(await (await client.get("/console/login")).text())
    return await client.post(
        "/console/login",
        data={"csrf": token, "username": username, "password": password},
        allow_redirects=False,
    )


async def _metric(client, reason: str) -> float:
    text = await (await client.get("/metrics")).text()
    line = f'passiton_console_login_failures_total{{reason="{reason}"}} '
    found = [float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line)]
    return found[0] if found else 0.0


async def test_guessing_is_throttled_and_the_owner_still_gets_in_from_elsewhere(console):  # noqa: F811
    for _ in range(PAIR_LIMIT):
        assert (await _attempt(console, "admin", "not the password")).status == 401
    refused = await _attempt(console, "admin", "still guessing")
    assert refused.status == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    # the throttled address is refused even with the right password: guessing gains nothing
    assert (await _attempt(console, "admin", PASSWORD)).status == 429
    # the owner, from another address, is not locked out by someone else's guessing
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
    async with aiohttp.ClientSession(
        base_url=str(console.http.make_url("/")),
        connector=connector,
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    ) as owner:
        token = csrf_of(await (await owner.get("/console/login")).text())
        answer = await owner.post(
            "/console/login",
            data={"csrf": token, "username": "admin", "password": PASSWORD},
            allow_redirects=False,
        )
        assert answer.status == 303, await answer.text()
    assert await _metric(console, "refused") == PAIR_LIMIT
    assert await _metric(console, "throttled") == 2
    rows = await console.bridge.storage.query(
        "SELECT username, detail->>'ip' AS ip FROM console_audit WHERE action = 'login failed'"
    )
    assert len(rows) == PAIR_LIMIT
    assert {(r["username"], r["ip"]) for r in rows} == {("admin", "127.0.0.1")}


def test_one_address_spraying_accounts_and_many_addresses_at_one_account() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for i in range(throttle.address_limit):
        assert throttle.retry_after(f"user{i}", "10.0.0.1") == 0
        throttle.failed(f"user{i}", "10.0.0.1")
    assert throttle.retry_after("someone-else", "10.0.0.1") > 0
    throttle.succeeded("admin", "10.9.9.9")  # the owner's usual address
    for i in range(throttle.account_limit):
        throttle.failed("admin", f"10.1.{i // 250}.{i % 250}")
    assert throttle.retry_after("admin", "10.2.0.1") > 0  # a new address: slowed down
    assert throttle.retry_after("admin", "10.9.9.9") == 0  # the owner's: never
    now[0] += throttle.window
    assert throttle.retry_after("admin", "10.2.0.1") == 0
    assert throttle.retry_after("someone-else", "10.0.0.1") == 0


def test_the_throttle_tables_are_bounded() -> None:
    throttle = LoginThrottle(size=100)
    for i in range(1000):
        throttle.failed(f"user{i}", f"10.0.{i // 250}.{i % 250}")
        throttle.succeeded(f"user{i}", "10.0.0.1")
    assert len(throttle._pairs._table) <= 100
    assert len(throttle._known) <= 100


async def test_password_checks_run_off_the_event_loop(console, monkeypatch):  # noqa: F811
    threads: list[threading.Thread] = []
    real = auth._hasher

    class Recording:
        def verify(self, *args):
            threads.append(threading.current_thread())
            return real.verify(*args)

        def hash(self, *args):
            threads.append(threading.current_thread())
            return real.hash(*args)

    monkeypatch.setattr(auth, "_hasher", Recording())
    assert (await _attempt(console, "viewer", "a wrong password")).status == 401
    await login(console, "viewer")
    assert len(threads) == 2
    assert threading.current_thread() not in threads


@pytest.mark.parametrize(
    ("username", "password", "problem"),
    [
        ("dana", "short", "at least 12"),
        ("dana", "password2024!", "too common"),
        ("dana", "Qwertyuiop123", "too common"),
        ("dana", "zzzzzzzzzzzzzzz", "one character"),
        ("dana.example", "Dana.Example", "user name"),
        ("dana", "123456789012", "too common"),
    ],
)
async def test_weak_passwords_are_refused(console, username, password, problem):  # noqa: F811
    token = await login(console, "admin")
    answer = await console.post(
        "/console/users",
        data={"csrf": token, "username": username, "role": "viewer", "password": password},
        allow_redirects=False,
    )
    assert answer.status == 400
    assert problem in await answer.text()


def test_user_add_refuses_weak_passwords(db_url, capsys):
    class Stdin:
        def __init__(self, text: str) -> None:
            self.text = text

        def isatty(self) -> bool:
            return False

        def readline(self) -> str:
            return self.text

    args = argparse.Namespace(name="carol", role="viewer")
    assert cmd_user(args, make_config(db_url), Stdin("password12345\n")) == 2  # type: ignore[arg-type]
    assert "too common" in capsys.readouterr().err


async def _attempt_from(client, forwarded_for: str, password: str):
    headers = {"X-Forwarded-For": forwarded_for}
    token = csrf_of(await (await client.get("/console/login", headers=headers)).text())
    return await client.post(
        "/console/login",
        data={"csrf": token, "username": "admin", "password": password},
        headers=headers,
        allow_redirects=False,
    )


async def test_a_spoofed_forwarded_for_does_not_escape_the_throttle(console):  # noqa: F811
    for i in range(PAIR_LIMIT):
        answer = await _attempt_from(console, f"203.0.113.{i}", "a guess")
        assert answer.status == 401
    assert (await _attempt_from(console, "203.0.113.99", "a guess")).status == 429


async def test_behind_a_trusted_proxy_each_client_has_its_own_bounds(db_url, aiohttp_client):
    config = make_config(db_url, console_trusted_proxies=("127.0.0.1/32",))
    app = create_bridge_app(config, notifiers={}, clock=Clock(T0), workers=False)
    client = await aiohttp_client(app)
    await add_users(app[BRIDGE].storage, T0)
    for _ in range(PAIR_LIMIT):
        assert (await _attempt_from(client, "203.0.113.9", "a guess")).status == 401
    assert (await _attempt_from(client, "203.0.113.9", PASSWORD)).status == 429
    client.session.cookie_jar.clear()
    assert (await _attempt_from(client, "198.51.100.7", PASSWORD)).status == 303
