"""Attack: hold connections open by sending the request head or body slowly (slowloris).

Against the real exporter process with 1-second timeouts on both listeners: a connection that
never completes its request head is closed; a body that stops arriving is answered 408 and
counted; other clients are served meanwhile.
"""

from __future__ import annotations

import socket
import time

import pytest

from exporter.beacon_keys import beacon_key
from tests import plain_http
from tests.abuse.exporter_process import BEACON_SECRET, TOKEN, exporter_process

TIMEOUTS = {"EXPORTER_HEADER_TIMEOUT_SECONDS": "1", "EXPORTER_BODY_TIMEOUT_SECONDS": "1"}
# far above the configured second: only a connection that is never closed fails the tests
PATIENCE_SECONDS = 15


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    sock.settimeout(PATIENCE_SECONDS)
    return sock


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.fixture(scope="module")
def exporter():
    with exporter_process(TIMEOUTS) as running:
        yield running


@pytest.mark.parametrize("listener", ["internal", "public"])
def test_an_unfinished_request_head_is_closed(exporter, listener: str) -> None:
    if True:
        url = getattr(exporter, listener)
        idle = connect(url)
        partial = connect(url)
        partial.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        for _ in range(3):  # trickle header bytes: each keeps a naive server waiting
            time.sleep(0.3)
            partial.sendall(b"a")
        # meanwhile, everyone else is served
        assert plain_http.get(f"{url}/-/healthy", timeout=5).status_code == 200
        assert read_all(partial) == b""  # closed without an answer
        assert read_all(idle) == b""
        closed_after = time.monotonic() - started
        partial.close()
        idle.close()
    assert closed_after < PATIENCE_SECONDS


def test_a_body_that_stops_arriving_is_answered_408_and_counted(exporter) -> None:
    if True:
        sock = connect(exporter.internal)
        sock.sendall(
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\n".encode()
            + b"Content-Length: 1000\r\n\r\n[{"
        )
        answer = read_all(sock).decode()
        sock.close()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "body_timeout" in answer
        key = beacon_key(BEACON_SECRET, "o", "w")
        sock = connect(exporter.public)
        sock.sendall(
            f"POST /v1/beacon?key={key} HTTP/1.1\r\nHost: x\r\n".encode()
            + b"Content-Type: text/plain\r\nContent-Length: 1000\r\n\r\n[{"
        )
        answer = read_all(sock).decode()
        sock.close()
        assert answer.startswith("HTTP/1.1 408"), answer
        assert exporter.sample("passiton_exporter_body_timeouts_total") == 2
