"""Every answer of the beacon to an allowed origin carries the CORS headers, refusals included: a
browser hides from the page any answer without them, so a widget could not read why its beacon was
refused (413, 415, 400, 429, ...). An origin not allowed gets none, and neither does a request
without an Origin."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.app import PUBLIC
from tests.exporter.support import key_for, make_app

ORIGIN = "https://donate.example.org"
EVENT = {"type": "widget.load_error", "organization_id": "o", "widget_id": "w"}
KEY = key_for("o", "w")
CORS = {
    "Access-Control-Allow-Origin": ORIGIN,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
    "Vary": "Origin",
}


def _post(data: bytes | str, content_type: str = "text/plain", key: str = KEY) -> dict[str, Any]:
    query = f"?key={key}" if key else ""
    return {
        "path": f"/v1/beacon{query}",
        "data": data,
        "headers": {"Content-Type": content_type, "Origin": ORIGIN},
    }


REFUSALS = {
    "too_large": (413, _post("[" + " " * 20_000 + "]")),
    "batch_too_large": (413, _post(json.dumps([EVENT] * 21))),
    "unsupported_content_type": (415, _post(json.dumps([EVENT]), "application/xml")),
    "invalid_json": (400, _post("{not json")),
    "type_not_allowed": (400, _post(json.dumps({**EVENT, "type": "payment.failed"}))),
    "missing_key": (401, _post(json.dumps([EVENT]), key="")),
    "malformed_key": (403, _post(json.dumps([EVENT]), key="v1.short")),
    "forged_key": (403, _post(json.dumps([{**EVENT, "organization_id": "x"}]))),
    "key_mismatch": (403, _post(json.dumps([EVENT, {**EVENT, "widget_id": "w2"}]))),
}


def _assert_cors(headers: Any) -> None:
    assert {name: headers.get(name) for name in CORS} == CORS


@pytest.mark.parametrize("reason", sorted(REFUSALS))
async def test_a_refusal_to_an_allowed_origin_carries_the_cors_headers(aiohttp_client, reason):
    status, request = REFUSALS[reason]
    app = make_app(cors_origins=(ORIGIN,))
    client = await aiohttp_client(app[PUBLIC])
    response = await client.post(request["path"], data=request["data"], headers=request["headers"])
    assert response.status == status
    assert (await response.json())["error"] == reason
    _assert_cors(response.headers)


@pytest.mark.parametrize("limit", ["client", "key"])
async def test_a_rate_limited_beacon_carries_the_cors_headers(aiohttp_client, limit):
    rates = (
        {"beacon_rate_per_minute": 1} if limit == "client" else {"beacon_key_rate_per_minute": 1}
    )
    app = make_app(cors_origins=(ORIGIN,), **rates)
    client = await aiohttp_client(app[PUBLIC])
    request = _post(json.dumps([EVENT]))
    first = await client.post(request["path"], data=request["data"], headers=request["headers"])
    assert first.status == 202
    _assert_cors(first.headers)
    second = await client.post(request["path"], data=request["data"], headers=request["headers"])
    assert second.status == 429
    assert (await second.json())["error"] == "rate_limited"
    assert second.headers["Retry-After"] == "60"
    _assert_cors(second.headers)


async def test_an_unconfigured_beacon_answers_an_allowed_origin_with_the_cors_headers(
    aiohttp_client,
):
    app = make_app(cors_origins=(ORIGIN,), beacon_secret="")
    client = await aiohttp_client(app[PUBLIC])
    request = _post(json.dumps([EVENT]))
    response = await client.post(request["path"], data=request["data"], headers=request["headers"])
    assert response.status == 404
    assert (await response.json())["error"] == "not_configured"
    _assert_cors(response.headers)


@pytest.mark.parametrize("reason", sorted(REFUSALS))
async def test_no_cors_headers_without_an_origin(aiohttp_client, reason):
    status, request = REFUSALS[reason]
    app = make_app(cors_origins=(ORIGIN,))
    client = await aiohttp_client(app[PUBLIC])
    headers = {"Content-Type": request["headers"]["Content-Type"]}
    response = await client.post(request["path"], data=request["data"], headers=headers)
    assert response.status == status
    assert not {name for name in response.headers if name.startswith("Access-Control-")}


async def test_an_origin_not_allowed_is_refused_without_cors_headers(aiohttp_client):
    app = make_app(cors_origins=(ORIGIN,))
    client = await aiohttp_client(app[PUBLIC])
    request = _post("{not json")
    headers = {**request["headers"], "Origin": "https://evil.example"}
    response = await client.post(request["path"], data=request["data"], headers=headers)
    assert response.status == 403
    assert (await response.json())["error"] == "origin_not_allowed"
    assert not {name for name in response.headers if name.startswith("Access-Control-")}
