"""The console's calls to Prometheus (queries, rules); Alertmanager's silences are
``alertmanagers.py``."""

from __future__ import annotations

import json
from typing import Any

import httpx


class UpstreamError(Exception):
    """Alertmanager or Prometheus refused or could not be reached; the message says which."""


async def prometheus_get(
    http: httpx.AsyncClient, prometheus_url: str, path: str, params: dict[str, str]
) -> Any:
    url = prometheus_url.rstrip("/") + path
    try:
        response = await http.get(url, params=params, timeout=20.0)
    except httpx.HTTPError as exc:
        raise UpstreamError(f"Prometheus unreachable: {type(exc).__name__}") from exc
    try:
        data = response.json()
    except ValueError:
        raise UpstreamError(f"Prometheus answered {response.status_code}") from None
    if data.get("status") != "success":
        raise UpstreamError(f"Prometheus: {data.get('error', response.status_code)}")
    return data["data"]


async def prometheus_range(
    http: httpx.AsyncClient,
    prometheus_url: str,
    query: str,
    start: float,
    end: float,
    step: float,
    max_bytes: int,
    seconds: float = 30.0,
) -> list[Any]:
    """A range query's series, POSTed (a long expression fits); an answer over ``max_bytes``
    is abandoned as it streams in (UpstreamError), so a viewer cannot fill the memory."""
    url = prometheus_url.rstrip("/") + "/api/v1/query_range"
    form = {"query": query, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step:g}"}
    body = bytearray()
    try:
        async with http.stream("POST", url, data=form, timeout=seconds) as response:
            async for piece in response.aiter_bytes():
                body += piece
                if len(body) > max_bytes:
                    raise UpstreamError(
                        f"Prometheus's answer exceeds {max_bytes // 2**20} MiB; narrow the"
                        " what-if to one organization"
                    )
    except httpx.HTTPError as exc:
        raise UpstreamError(f"Prometheus unreachable: {type(exc).__name__}") from exc
    try:
        data = json.loads(body)
    except ValueError:
        raise UpstreamError(f"Prometheus answered {response.status_code}") from None
    if not isinstance(data, dict) or data.get("status") != "success":
        error = data.get("error") if isinstance(data, dict) else None
        raise UpstreamError(f"Prometheus: {error or response.status_code}")
    return list(data["data"]["result"])


async def instant(http: httpx.AsyncClient, prometheus_url: str, query: str) -> list[Any]:
    return (await prometheus_get(http, prometheus_url, "/api/v1/query", {"query": query}))["result"]
