"""HTTP calls from tests: one client per thread, on the process's shared TLS context.

``httpx.get`` and friends open a client per call, and each client loads the CA bundle into a new
TLS context (40 to 50 ms of CPU), even for a plain ``http://`` URL: the readiness polls, status
checks and the end-to-end traffic threads paid that many times a second. No connection is kept
between requests: each opens its own, as ``httpx.get`` does, so a server closing an idle
connection cannot fail a request.
"""

from __future__ import annotations

import threading
from typing import Any

import httpx

from passiton_common.http_client import tls_context

_clients = threading.local()


def http() -> httpx.Client:
    """This thread's client."""
    client = getattr(_clients, "client", None)
    if client is None:
        client = _clients.client = httpx.Client(
            verify=tls_context(), limits=httpx.Limits(max_keepalive_connections=0)
        )
    return client


def request(method: str, url: str, **options: Any) -> httpx.Response:
    return http().request(method, url, **options)


def get(url: str, **options: Any) -> httpx.Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> httpx.Response:
    return request("POST", url, **options)


def put(url: str, **options: Any) -> httpx.Response:
    return request("PUT", url, **options)


def delete(url: str, **options: Any) -> httpx.Response:
    return request("DELETE", url, **options)
