"""The API's alert work (issue 21): acknowledging for a time or until resolved, unacknowledging,
snoozing, assigning, notes; their 4xx (body, role, scope, NUL, a resolved incident) and repeats,
through the bridge's incident actions on the test's clock."""

from __future__ import annotations

import pytest

from tests.console.api_support import add_limited, bearer, get, post, token_for
from tests.console.support import incident_ids, outage


@pytest.fixture
async def outaged(console):
    await outage(console)
    return console


async def test_acknowledge_for_a_time_then_it_fires_again(outaged):
    console = outaged
    big = (await incident_ids(console))["pay0"]
    token = await token_for(console, "responder")
    path = f"/incidents/{big}/acknowledge"
    for bad in (
        {"expires_in_seconds": 10},
        {"expires_in_seconds": 3600, "until_resolved": True},
        {"for": "1h"},
    ):
        await post(console, path, token, status=400, json=bad)
    done = await post(console, path, token, json={"expires_in_seconds": 3600})
    assert (done["changed"], done["status"]) == (True, "acknowledged")
    incident = (await get(console, f"/incidents/{big}", token))["incident"]
    assert incident["ack_expires_at"] == "2026-03-01T10:00:30Z"
    console.clock.advance(3600)
    assert await console.bridge.escalator.run_once() == 1
    incident = (await get(console, f"/incidents/{big}", token))["incident"]
    assert (incident["status"], incident["ack_expires_at"]) == ("firing", None)
    until_resolved = await post(console, path, token, json={"until_resolved": True})
    assert until_resolved["changed"]
    console.clock.advance(7 * 86400)
    assert await console.bridge.escalator.run_once() == 0


async def test_unacknowledge_snooze_assign_and_notes(outaged):
    console = outaged
    ids = await incident_ids(console)
    big = ids["pay0"]
    token = await token_for(console, "responder")
    base = f"/incidents/{big}"
    await post(console, f"{base}/acknowledge", token)
    done = await post(console, f"{base}/unacknowledge", token)
    assert (done["changed"], done["status"]) == (True, "firing")
    assert (await post(console, f"{base}/unacknowledge", token))["changed"] is False

    await post(console, f"{base}/snooze", token, status=400, json={"duration_seconds": 5})
    await post(console, f"{base}/snooze", token, status=400)  # a body is needed
    snoozed = await post(console, f"{base}/snooze", token, json={"duration_seconds": 1800})
    assert snoozed["changed"]
    assert snoozed["status"] == "firing"
    incident = (await get(console, base, token))["incident"]
    assert incident["snoozed_until"] == "2026-03-01T09:30:30Z"
    assert (await post(console, f"{base}/unsnooze", token))["changed"] is True
    assert (await post(console, f"{base}/unsnooze", token))["changed"] is False

    assert (await post(console, f"{base}/assign", token, json={"assignee": "admin"}))["changed"]
    again = await post(console, f"{base}/assign", token, json={"assignee": "admin"})
    assert again["changed"] is False
    await post(console, f"{base}/assign", token, status=400, json={"assignee": "ghost"})
    await add_limited(console, "wendy", "responder", ("org-w",))
    await post(console, f"{base}/assign", token, status=400, json={"assignee": "wendy"})
    assert (await get(console, base, token))["incident"]["assignee"] == "admin"

    note = {"text": "<b>restarted</b> the pooler"}
    assert (await post(console, f"{base}/notes", token, json=note))["changed"] is True
    assert (await post(console, f"{base}/notes", token, json=note))["changed"] is False
    for bad in ({"text": ""}, {"text": "x" * 2001}, {"text": "a\u0000b"}, {"txt": "x"}):
        await post(console, f"{base}/notes", token, status=400, json=bad)
    timeline = (await get(console, base, token))["timeline"]
    [noted] = [e for e in timeline if e["kind"] == "note"]
    assert noted["detail"] == {
        "by": "responder",
        "via": "api",
        "text": "<b>restarted</b> the pooler",
    }
    kinds = [e["kind"] for e in timeline]
    for kind in ("unacknowledged", "snoozed", "unsnoozed", "assigned"):
        assert kinds.count(kind) == 1, kind
    audit = await console.bridge.storage.query(
        "SELECT action FROM console_audit WHERE detail->>'token' IS NOT NULL ORDER BY id"
    )
    assert [r["action"] for r in audit][-5:] == [
        "unacknowledge incident",
        "snooze incident",
        "unsnooze incident",
        "assign incident",
        "note incident",
    ]

    await post(console, f"{base}/resolve", token)
    late = await post(console, f"{base}/snooze", token, status=409, json={"duration_seconds": 60})
    assert "resolved" in late["error"]


async def test_roles_and_organizations(outaged):
    console = outaged
    ids = await incident_ids(console)
    viewer = await token_for(console, "viewer")
    for action, body in (
        ("unacknowledge", None),
        ("snooze", {"duration_seconds": 60}),
        ("unsnooze", None),
        ("assign", {"assignee": ""}),
        ("notes", {"text": "x"}),
    ):
        response = await console.post(
            f"/api/v1/incidents/{ids['pay0']}/{action}", headers=bearer(viewer), json=body
        )
        assert response.status == 403, action
    await add_limited(console, "bea", "responder", ("org-a",))
    limited = await token_for(console, "bea")
    refused = await post(
        console, f"/incidents/{ids['wid1']}/notes", limited, status=403, json={"text": "x"}
    )
    assert refused == {"error": f"incident {ids['wid1']} is outside the token's organizations"}
    await post(console, "/incidents/999999/unsnooze", limited, status=404)
    await post(console, "/incidents/abc/unsnooze", limited, status=404)
    done = await post(console, f"/incidents/{ids['pay0']}/notes", limited, json={"text": "mine"})
    assert done["changed"]
    document = await get(console, "/openapi.json", viewer)
    ack = document["paths"]["/api/v1/incidents/{id}/acknowledge"]["post"]
    assert ack["requestBody"]["required"] is False
    assert document["paths"]["/api/v1/incidents/{id}/notes"]["post"]["requestBody"]["required"]
