"""One-off HTTP calls for tests, on the process's shared TLS context.

``httpx.get`` and friends open a client per call, and each client loads the CA bundle into a
new TLS context (40 ms of CPU), even for a plain ``http://`` URL: a readiness poll or a status
check paid that every time.
"""

from __future__ import annotations

from typing import Any

import httpx

from passiton_common.http_client import tls_context


def request(method: str, url: str, **options: Any) -> httpx.Response:
    options.setdefault("verify", tls_context())
    return httpx.request(method, url, **options)


def get(url: str, **options: Any) -> httpx.Response:
    return request("GET", url, **options)


def post(url: str, **options: Any) -> httpx.Response:
    return request("POST", url, **options)


def put(url: str, **options: Any) -> httpx.Response:
    return request("PUT", url, **options)


def delete(url: str, **options: Any) -> httpx.Response:
    return request("DELETE", url, **options)
