"""Secrets in logs (issue 18, 5): a request head with a bare LF (or a control character) makes
aiohttp log the whole head, ``Authorization`` and the session cookie included. Every record of
``setup_logging``'s handler passes ``passiton_common.logs.RedactSecrets``."""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import time

import pytest

from passiton_common.logs import RateLimitRepeats, RedactSecrets, redact_secrets, setup_logging
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import T0, Clock, make_config

SECRETS = ("TOKSECRET0123456789", "COOKIESECRET0123456789", "PWSECRET01234")
HEADS = [
    b"GET /console/ HTTP/1.1\nHost: x\nAuthorization: Bearer TOKSECRET0123456789\n"
    b"Cookie: passiton_console=COOKIESECRET0123456789\n\n",
    b"POST /v1/alertmanager HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOKSECRET0123456789\n"
    b"Cookie: passiton_console=COOKIESECRET0123456789\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer TOK\x01SECRET0123456789\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n"
    b"Cookie: a=b; passiton_console=COOKIESECRET\x010123456789\r\n\r\n",
]


@pytest.fixture
def json_logs():
    """What ``setup_logging``'s handler writes (to a buffer instead of stderr)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    setup_logging("INFO")
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    yield buffer.getvalue
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


@pytest.mark.parametrize("head", HEADS)
async def test_a_malformed_head_logs_no_credential(db_url, aiohttp_client, json_logs, head):
    app = create_bridge_app(make_config(db_url), notifiers={}, clock=Clock(T0), workers=False)
    client = await aiohttp_client(app)
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head)
    await writer.drain()
    async with asyncio.timeout(5):
        answer = await reader.read(4096)
    writer.close()
    assert answer.startswith(b"HTTP/1.0 400") or answer.startswith(b"HTTP/1.1 400"), answer
    await asyncio.sleep(0.05)
    logged = json_logs()
    assert "aiohttp.server" in logged, logged  # the refusal is still logged
    for secret in SECRETS:
        assert secret not in logged.replace("\\\\x01", "").replace("\\x01", "")
        assert secret[:8] not in logged


def test_every_place_of_a_record_is_redacted() -> None:
    try:
        raise ValueError("Authorization: Bearer TOKSECRET0123456789")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, "f", 1, "got %s", ("cookie=passiton_console=COOKIESECRET0",), True
        )
        record.exc_info = sys.exc_info()
    record.url = "postgresql://user:PWSECRET01234@db/x"
    record.headers = {"Authorization": "Basic dXNlcjpQV1NFQ1JFVA=="}
    assert RedactSecrets().filter(record)
    text = logging.Formatter().format(record) + str(record.__dict__)
    assert "TOKSECRET" not in text
    assert "COOKIESECRET" not in text
    assert "PWSECRET" not in text
    assert "dXNlcjpQV1NFQ1JFVA" not in text
    assert "[REDACTED]" in text


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "text",
    [
        "a+" * 8192,
        "authorization:" * 1200,
        "Bearer " * 2400,
        "x://" * 4096,
        "a://b" * 3300,
        "\\x01" * 4096 + "Cookie: ",
        "passiton_console=" * 1000,
    ],
)
def test_redaction_is_linear_on_16kib_of_hostile_text(text: str) -> None:
    started = time.perf_counter()
    redact_secrets(text[: 16 * 1024] + " key @")
    assert time.perf_counter() - started < 1.0


# --- Log amplification (issue 18, 6) ----------------------------------------------------------


def test_repeated_records_are_rate_limited_and_the_drop_is_told() -> None:
    now = [0.0]
    limit = RateLimitRepeats(burst=5, window=60.0, clock=lambda: now[0])

    def record(msg: str, *args: object) -> logging.LogRecord:
        return logging.LogRecord("aiohttp.server", logging.ERROR, "f", 1, msg, args, None)

    passed = [
        limit.filter(record("Error handling request from %s", f"10.0.0.{i}")) for i in range(1000)
    ]
    assert sum(passed) == 5
    assert limit.filter(record("another message"))  # other templates are not affected
    now[0] += 60.0
    first = record("Error handling request from %s", "10.0.0.1")
    assert limit.filter(first)
    assert first.suppressed == 995


def test_the_template_table_is_bounded() -> None:
    limit = RateLimitRepeats(keys=50)
    for i in range(1000):
        limit.filter(logging.LogRecord("x", logging.INFO, "f", 1, f"message {i}", (), None))
    assert len(limit._seen) <= 50


async def test_a_flood_of_malformed_heads_logs_a_bounded_number_of_records(
    db_url, aiohttp_client, json_logs
):
    app = create_bridge_app(make_config(db_url), notifiers={}, clock=Clock(T0), workers=False)
    client = await aiohttp_client(app)
    for _ in range(60):
        reader, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(HEADS[0])
        await writer.drain()
        await reader.read(4096)
        writer.close()
    await asyncio.sleep(0.05)
    lines = [line for line in json_logs().splitlines() if "Error handling request" in line]
    assert 1 <= len(lines) <= 20
