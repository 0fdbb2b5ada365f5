"""Attacks on the console's login (issue 18): guessing passwords as fast as the bridge answers,
stalling the event loop with argon2, guessing unseen, weak passwords."""

from __future__ import annotations

import argparse
import threading

import aiohttp
import pytest

from console import auth
from console.cli import cmd_user
from console.throttle import PAIR_LIMIT, LoginThrottle
from tests.abuse.test_abuse_console import console  # noqa: F401 - the fixture
from tests.bridge.support import make_config
from tests.console.support import PASSWORD, csrf_of, login


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
