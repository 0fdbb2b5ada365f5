"""Attacks on the bridge, one test each, every defence asserted with a bound.

Redaction in linear time: every pattern of ``bridge/sanitize.py`` gets 16 KiB inputs built to
make a backtracking regex rescan the rest of the string from every start position. Before
issue 10 the worst of them took about 12 s each; the per-test timeout (a hang guard, not a speed
measurement: ``benchmarks/bridge_sanitize.py`` measures) fails such a regression, and each
secret appended after the adversarial text must still be redacted.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from bridge.app import BRIDGE, create_app
from bridge.config import ConfigError
from bridge.sanitize import _redact_cached, redact, redact_mapping
from bridge.server import runner_options
from bridge.webhook import MAX_VALUE, TRUNCATED_MARKER
from passiton_common.settings import MIN_TOKEN_LENGTH, TOKEN_NAMES, read_secrets
from tests.abuse.bridge_inputs import ADVERSARIAL, SECRETS
from tests.bridge.support import (
    AUTH,
    TOKEN,
    BridgeClient,
    am_alert,
    body,
    count,
    make_config,
    notifiers,
    payload,
)

SIZE = 16 * 1024


def test_every_pattern_has_adversarial_inputs_and_a_secret() -> None:
    assert {pattern for pattern, _ in ADVERSARIAL} == set(SECRETS)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("pattern", "name"), sorted(ADVERSARIAL))
def test_redaction_of_16kib_adversarial_input(pattern: str, name: str) -> None:
    text = ADVERSARIAL[pattern, name](SIZE)
    assert len(text) == SIZE
    redact(text)
    secret_text, secret = SECRETS[pattern]
    for attacked in (f"{text} {secret_text}", f"{secret_text} {text}"):
        out = redact(attacked)
        assert secret not in out, (pattern, name)
        assert "[REDACTED" in out
    assert secret not in str(redact_mapping({"description": f"{text} {secret_text}"}))


# --- The webhook: one poisoned alert must not cost its group the notification --------------------
# Alertmanager drops a notification answered with a 4xx and retries a 5xx forever, so a crafted
# label (a rule copying attacker-controlled text into an annotation) could either silence its
# whole group or wedge it. Each test below is one such attack against the real bridge on both
# databases.


@pytest.fixture
async def client(db_url, aiohttp_client):
    config = make_config(db_url, max_body_bytes=4 * 1024 * 1024)
    app = create_app(
        config, notifiers=notifiers("slack", "email", "pagerduty", "sms"), workers=False
    )
    return BridgeClient(await aiohttp_client(app), app[BRIDGE])


async def metric(client, status: str) -> float:
    text = await (await client.get("/metrics")).text()
    line = f'passiton_bridge_notifications_received_total{{status="{status}"}} '
    found = [float(x.removeprefix(line)) for x in text.splitlines() if x.startswith(line)]
    return found[0] if found else 0.0


async def test_poisoned_alerts_do_not_drop_their_group(client):
    """50 alerts in one group, 10 of them poisoned (NUL and control characters, 64 KiB
    annotations, the same alert three times): every distinct alert is stored, none as a 500/400,
    and no stored value exceeds MAX_VALUE plus the truncation marker."""
    poison = "\x00\x1b[31m" + "A" * (64 * 1024)
    alerts = [am_alert(fingerprint=f"good{i:02}") for i in range(40)]
    for i in range(10):
        bad = am_alert(
            fingerprint=f"bad{i:02}\x00",
            labels={"instance": poison[:300]},
            annotations={"description": poison},
        )
        alerts.extend([bad, bad, bad])
    response = await client.post("/v1/alertmanager", data=body(payload(*alerts)), headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["new"] == 50
    rows = await client.bridge.storage.query(
        "SELECT fingerprint, description, labels, annotations FROM payment_alerts"
    )
    assert len(rows) == 50
    bound = MAX_VALUE + len(TRUNCATED_MARKER.format(n=64 * 1024))
    assert max(len(r["description"]) for r in rows) <= bound
    assert not any("\x00" in str(r) or "\x1b" in str(r) for r in rows)
    assert await metric(client, "error") == 0


async def test_nesting_bomb_is_a_400_and_the_bridge_keeps_answering(client):
    """A 4 MiB body of nested arrays (2 million levels): 400, nothing stored, no 500."""
    depth = 2 * 1024 * 1024 - 64
    bomb = b'{"version":"4","x":' + b"[" * depth + b"}"
    response = await client.post("/v1/alertmanager", data=bomb, headers=AUTH)
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["reason"]
    response = await client.post("/v1/alertmanager", data=body(payload(am_alert())), headers=AUTH)
    assert response.status == 200
    assert await metric(client, "error") == 0


async def test_undecodable_authorization_is_a_401_not_a_500(client):
    """Header bytes that are not UTF-8 (aiohttp hands them over as surrogates): 401 each time."""
    data = body(payload(am_alert()))
    for _ in range(20):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(
            b"POST /v1/alertmanager HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer \xff\xfe"
            + TOKEN.encode()
            + b"\r\nContent-Length: "
            + str(len(data)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + data
        )
        await writer.drain()
        assert (await reader.read()).startswith(b"HTTP/1.1 401 ")
        writer.close()
    assert await metric(client, "unauthorized") == 20
    assert await metric(client, "error") == 0
    assert await count(client.bridge.storage, "alert_notifications") == 0


def test_guessable_tokens_are_refused_at_start_up():
    """Tokens under 16 characters never reach a running bridge (or exporter)."""
    for name in TOKEN_NAMES:
        with pytest.raises(ConfigError, match=f"use at least {MIN_TOKEN_LENGTH}"):
            read_secrets({name: "x" * (MIN_TOKEN_LENGTH - 1)})
    assert MIN_TOKEN_LENGTH >= 16


async def test_readiness_reveals_nothing_about_the_database(client):
    """/-/ready is unauthenticated: when the database fails it says so, and nothing else."""
    await client.bridge.storage.close()  # every query now fails: "storage is not open"
    response = await client.get("/-/ready")
    assert response.status == 503
    assert await response.text() == "database unavailable\n"


def test_unique_long_values_are_not_cached():
    """8,192 unique 16 KiB descriptions would hold 128 MiB in the redaction cache: long values
    are redacted without caching, short ones (label values) still hit the cache."""
    _redact_cached.cache_clear()
    before = _redact_cached.cache_info().currsize
    for i in range(200):
        assert redact(f"{i} token=abc " + "x" * SIZE) == f"{i} token=[REDACTED] " + "x" * SIZE
    assert _redact_cached.cache_info().currsize == before
    redact("org-cache-probe")
    assert _redact_cached.cache_info().currsize == before + 1


# --- Slow clients: a stalled sender does not hold a connection or a handler ----------------------


@pytest.fixture
async def slow_server(pg_database):
    """The bridge served with the runner options `passiton-monitoring bridge` uses, and short
    timeouts."""
    config = make_config(pg_database, header_timeout_seconds=0.5, body_timeout_seconds=0.5)
    app = create_app(config, notifiers=notifiers("slack"), workers=False)
    runner = web.AppRunner(app, **runner_options(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield app, port
    await runner.cleanup()


async def test_a_stalled_request_head_is_closed_after_the_header_timeout(slow_server):
    """Half a request head, then nothing: the bridge closes the connection (bound: the 0.5 s
    header timeout; the read below would wait 10 s)."""
    _, port = slow_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/alertmanager HTTP/1.1\r\nHost: b\r\n")
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing answered
    writer.close()


async def test_a_stalled_body_is_answered_503_after_the_body_timeout(slow_server):
    """The head and 10 of 1,000 announced bytes, then nothing: 503 (Alertmanager retries it),
    counted, and nothing stored."""
    app, port = slow_server
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/alertmanager HTTP/1.1\r\nHost: b\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Length: 1000\r\n\r\n"
        + b'{"version"'
    )
    await writer.drain()
    # Bound: the answer comes after the 0.5 s body timeout, the connection closes after 1 s of
    # lingering; the read below would wait 10 s.
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 503 ")
    assert b"body not received within 0.5s" in answer
    bridge = app[BRIDGE]
    assert bridge.metrics.notifications_received.labels(status="body_timeout")._value.get() == 1
    assert await count(bridge.storage, "alert_notifications") == 0
