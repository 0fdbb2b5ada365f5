"""One odd alert never costs its group the notification (Alertmanager drops every 4xx).

Against real PostgreSQL: control characters, a duplicated alert, an over-long
annotation, a non-UTF-8 ``Authorization`` header and pathological nesting.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from bridge.app import BRIDGE, create_app
from bridge.webhook import MAX_VALUE, clean_value
from tests.bridge.support import (
    AUTH,
    T0,
    BridgeClient,
    alert_rows,
    am_alert,
    body,
    count,
    make_config,
    notifiers,
    payload,
)

R = "\ufffd"
CONTROL = "".join(chr(c) for c in (*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0x85))


@pytest.fixture
async def client(db_url, aiohttp_client):
    chans = notifiers("slack", "email", "pagerduty", "sms")
    config = make_config(db_url, max_body_bytes=8 * 1024 * 1024)
    app = create_app(config, notifiers=chans, workers=False)
    return BridgeClient(await aiohttp_client(app), app[BRIDGE], chans)


async def test_control_characters_are_stored_safely(client):
    odd = am_alert(
        fingerprint="nul\x00print",
        labels={"instance": f"db{CONTROL}1", "we\x00ird": "x"},
        annotations={"description": f"boom\x00 {CONTROL}\nsecond line\tok"},
    )
    response = await client.post("/v1/alertmanager", data=body(payload(odd)), headers=AUTH)
    assert response.status == 200, await response.text()
    assert (await response.json())["new"] == 1
    storage = client.bridge.storage
    [row] = await storage.query(
        "SELECT fingerprint, description, labels, annotations FROM payment_alerts"
    )
    assert row["fingerprint"] == "nul\ufffdprint"
    assert row["description"] == "boom" + R + " " + R * len(CONTROL) + "\nsecond line\tok"
    labels = json.loads(row["labels"])
    assert labels["instance"] == "db" + R * len(CONTROL) + "1"
    assert labels["we\ufffdird"] == "x"
    for text in (str(row), row["labels"], row["annotations"]):
        assert not any(ch in text for ch in CONTROL)
    # The delivery queue (jsonb on PostgreSQL) took it too, and the channels get it.
    assert await count(storage, "alert_deliveries") == 2  # high: slack, email
    await client.bridge.delivery.run_once()
    [message] = client.chans["slack"].messages
    assert "\x00" not in message.alerts[0].description


async def test_the_same_alert_twice_in_one_notification_is_stored_once(client):
    twice = payload(am_alert(fingerprint="twin"), am_alert(fingerprint="twin"), am_alert())
    response = await client.post("/v1/alertmanager", data=body(twice), headers=AUTH)
    assert response.status == 200, await response.text()
    answer = await response.json()
    assert answer["alerts"] == 2
    assert answer["new"] == 2
    storage = client.bridge.storage
    stored = sorted(r["fingerprint"] for r in await alert_rows(storage))
    assert stored == ["f00dfeed00000001", "twin"]
    await client.bridge.delivery.run_once()
    [message] = client.chans["slack"].messages
    assert sorted(a.fingerprint for a in message.alerts) == ["f00dfeed00000001", "twin"]


async def test_a_firing_and_resolved_twin_keeps_the_resolve(client):
    firing = am_alert(fingerprint="twin", severity="critical")
    resolved = am_alert(fingerprint="twin", severity="critical", status="resolved", ends_at=T0)
    response = await client.post(
        "/v1/alertmanager", data=body(payload(resolved, firing)), headers=AUTH
    )
    assert response.status == 200, await response.text()
    [row] = await alert_rows(client.bridge.storage)
    assert row["status"] == "resolved"


async def test_an_over_long_annotation_is_truncated_with_a_marker(client):
    huge = "x" * (MAX_VALUE * 4)
    long_one = am_alert(fingerprint="long", annotations={"description": huge})
    response = await client.post(
        "/v1/alertmanager", data=body(payload(long_one, am_alert())), headers=AUTH
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["new"] == 2
    [row] = await client.bridge.storage.query(
        "SELECT description FROM payment_alerts WHERE fingerprint = 'long'"
    )
    description = row["description"]
    assert description.startswith("x" * MAX_VALUE)
    assert description.endswith(f"[truncated by the bridge: {MAX_VALUE * 3} more characters]")
    assert len(description) < MAX_VALUE + 100
    assert clean_value("short") == "short"


async def test_a_non_utf8_authorization_header_is_401(client):
    data = body(payload(am_alert()))
    for credentials in (b"Bearer \xff\xfe\xc3", b"Basic \xff\xff", b"\xc3\x28 \xa0\xa1"):
        reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
        writer.write(
            b"POST /v1/alertmanager HTTP/1.1\r\nHost: bridge\r\nAuthorization: "
            + credentials
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(data)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + data
        )
        await writer.drain()
        answer = await reader.read()
        writer.close()
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert await alert_rows(client.bridge.storage) == []
    metrics = await (await client.get("/metrics")).text()
    assert 'passiton_bridge_notifications_received_total{status="unauthorized"} 3.0' in metrics
    assert 'status="error"' not in metrics


@pytest.mark.parametrize("where", ["top level", "unknown alert field", "label value"])
async def test_pathological_nesting_is_a_400(client, where):
    depth = 200_000
    nested = b"[" * depth + b"]" * depth
    alert = json.dumps(am_alert()).encode()
    if where == "top level":
        data = b'{"version":"4","extra":' + nested + b"}"
    elif where == "unknown alert field":
        alert = alert[:-1] + b',"extra":' + nested + b"}"
        data = body(payload(am_alert())).replace(json.dumps(am_alert()).encode(), alert)
    else:
        data = body(payload(am_alert(labels={"x": "PLACEHOLDER"}))).replace(
            b'"PLACEHOLDER"', nested
        )
    response = await client.post("/v1/alertmanager", data=data, headers=AUTH)
    assert response.status == 400
    assert (await response.json())["reason"]
    assert await alert_rows(client.bridge.storage) == []
    metrics = await (await client.get("/metrics")).text()
    assert 'status="error"' not in metrics
