"""The console's calls to Prometheus (queries, rules); Alertmanager's silences are
``alertmanagers.py``."""

from __future__ import annotations

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


async def instant(http: httpx.AsyncClient, prometheus_url: str, query: str) -> list[Any]:
    return (await prometheus_get(http, prometheus_url, "/api/v1/query", {"query": query}))["result"]
