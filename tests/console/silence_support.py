"""Helpers of the silences tests: a console over several Alertmanagers (two real ones and one
where nothing listens), alerts fired both at the bridge and at the Alertmanagers (which count
the alerts a silence silences), the silence form's fields, and what an Alertmanager holds."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from bridge.app import BRIDGE
from passiton_monitoring.bridge_process import create_bridge_app
from tests import plain_http
from tests.bridge.support import T0, BridgeClient, Clock, am_alert, make_config, notifiers
from tests.console.support import add_users, fire

NOWHERE = "http://127.0.0.1:9"  # nothing listens: an unreachable Alertmanager


def new_org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"  # the Alertmanagers serve every test of the package


async def console_over(db_url, aiohttp_client, *urls: str) -> BridgeClient:
    config = make_config(
        db_url,
        alertmanager_url=urls[0],
        alertmanager_urls=tuple(urls),
        prometheus_url=NOWHERE,
    )
    app = create_bridge_app(config, notifiers=notifiers("slack"), clock=Clock(T0), workers=False)
    client = BridgeClient(
        await aiohttp_client(app), app[BRIDGE], {}, Clock(T0), alertmanager=urls[0]
    )
    await add_users(client.bridge.storage, T0)
    return client


async def fire_everywhere(console, alertmanagers: tuple[str, ...], **kwargs: Any) -> None:
    """The alert stored by the bridge, and firing in each Alertmanager (for an hour)."""
    await fire(console, **kwargs)
    labels = am_alert(**kwargs)["labels"]
    now = datetime.now(UTC)
    for url in alertmanagers:
        response = plain_http.post(
            f"{url}/api/v2/alerts",
            json=[
                {
                    "labels": labels,
                    "startsAt": now.isoformat(),
                    "endsAt": (now + timedelta(hours=1)).isoformat(),
                }
            ],
        )
        assert response.status_code == 200, response.text


def form_rows(page: str) -> list[dict[str, Any]]:
    """The matcher rows of a silence form page: name, op, value, use."""
    rows = []
    for i in range(64):
        name = re.search(rf'name="name_{i}" value="([^"]*)"', page)
        if name is None:
            break
        use = re.search(rf'name="use_{i}" value="on" (checked)?', page)
        value = re.search(rf'name="value_{i}" value="([^"]*)"', page)
        op = re.search(rf'<select name="op_{i}"[^>]*>.*?<option selected>([^<]*)</option>', page)
        if not name.group(1):
            continue  # a blank row, for a matcher to add
        rows.append(
            {
                "name": name.group(1),
                "op": op.group(1).replace("&#34;", '"') if op else "=",
                "value": value.group(1) if value else "",
                "use": bool(use and use.group(1)),
            }
        )
    return rows


def form_data(csrf: str, rows: list[dict[str, Any]], **fields: str) -> dict[str, str]:
    data = {"csrf": csrf, "duration": "1h", "comment": "test silence", **fields}
    for i, row in enumerate(rows):
        data[f"name_{i}"] = row["name"]
        data[f"op_{i}"] = row.get("op", "=")
        data[f"value_{i}"] = row["value"]
        if row.get("use", True):
            data[f"use_{i}"] = "on"
    return data


def held(url: str, org: str) -> list[dict[str, Any]]:
    """The silences an Alertmanager holds that pin this organization."""
    return [
        s
        for s in plain_http.get(f"{url}/api/v2/silences").json()
        if {"name": "organization_id", "value": org, "isRegex": False, "isEqual": True}
        in s["matchers"]
    ]


def pending_silence(url: str, org: str) -> str:
    """A silence that starts in an hour, made straight in Alertmanager."""
    start = datetime.now(UTC) + timedelta(hours=1)
    response = plain_http.post(
        f"{url}/api/v2/silences",
        json={
            "matchers": [
                {"name": "organization_id", "value": org, "isRegex": False, "isEqual": True}
            ],
            "startsAt": start.isoformat(),
            "endsAt": (start + timedelta(hours=1)).isoformat(),
            "createdBy": "amtool-user",
            "comment": "maintenance window",
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["silenceID"]
