"""The API's incidents and alerts: listing, filters, paging, one incident with its alerts and
timeline, acknowledging and resolving through the bridge's incident actions, scoping by the
token's organizations and role, and ids that are never a 500."""

from __future__ import annotations

import pytest

from bridge.oncall.actions import OutsideScope
from tests.console.api_support import add_limited, bearer, get, post, token_for
from tests.console.support import incident_ids, merge_widget_into_outage, outage


@pytest.fixture
async def outaged(console):
    await outage(console)
    return console


async def test_incidents_list_filters_and_pages(outaged):
    console = outaged
    ids = await incident_ids(console)
    token = await token_for(console, "viewer")
    listed = (await get(console, "/incidents", token))["incidents"]
    assert [i["id"] for i in listed] == sorted({ids["pay0"], ids["wid1"]}, reverse=True)
    outage_incident = next(i for i in listed if i["id"] == ids["pay0"])
    assert outage_incident["organizations"] == ["org-a", "org-b", "org-c"]
    assert outage_incident["probable_cause"] == "DatabaseErrorsHigh"
    assert outage_incident["status"] == "firing"
    medium = await get(console, "/incidents?severity=medium", token)
    assert [i["id"] for i in medium["incidents"]] == [ids["wid1"]]
    by_org = await get(console, "/incidents?organization=org-b", token)
    assert [i["id"] for i in by_org["incidents"]] == [ids["pay0"]]
    assert (await get(console, "/incidents?status=resolved", token))["incidents"] == []
    first = await get(console, "/incidents?limit=1", token)
    assert len(first["incidents"]) == 1
    assert first["next_cursor"]
    second = await get(console, f"/incidents?limit=1&cursor={first['next_cursor']}", token)
    assert [i["id"] for i in second["incidents"]] != [i["id"] for i in first["incidents"]]
    assert len(second["incidents"]) == 1
    third = await get(console, f"/incidents?limit=1&cursor={second['next_cursor']}", token)
    assert third == {"incidents": [], "next_cursor": None}
    # a cursor past bigint (19 digits, as the document's pattern allows) is past every id: the
    # first page, never a 500 (the query's parameter overflowed; schemathesis found it)
    for cursor in ("9460879885180008780", "9999999999999999999"):
        assert await get(console, f"/incidents?limit=1&cursor={cursor}", token) == first
    for cursor in ("9" * 20, "9" * 5000, "-1", "1e3"):
        refused = await get(console, f"/incidents?cursor={cursor}", token, status=400)
        assert "cursor" in str(refused), refused


async def test_an_incident_with_its_alerts_and_timeline(outaged):
    console = outaged
    ids = await incident_ids(console)
    token = await token_for(console, "viewer")
    detail = await get(console, f"/incidents/{ids['pay0']}", token)
    assert detail["incident"]["id"] == ids["pay0"]
    assert {a["labels"].get("organization_id") for a in detail["alerts"]} == {
        "org-a",
        "org-b",
        "org-c",
        None,
    }
    assert all(a["id"].split("-")[0] in ("payment", "system") for a in detail["alerts"])
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds[0] == "opened"
    assert "alert_joined" in kinds


async def test_a_limited_token_sees_only_its_organizations(outaged):
    console = outaged
    ids = await incident_ids(console)
    await add_limited(console, "bea", "responder", ("org-a", "org-w"))
    token = await token_for(console, "bea", organizations=("org-a",))
    listed = (await get(console, "/incidents", token))["incidents"]
    assert [i["id"] for i in listed] == [ids["pay0"]]
    assert listed[0]["organizations"] == ["org-a"]  # the others are not named
    detail = await get(console, f"/incidents/{ids['pay0']}", token)
    assert [a["organization_id"] for a in detail["alerts"]] == ["org-a"]
    # outside its organizations: 403, saying so; what does not exist: 404
    outside = "outside the token's organizations"
    refused = await get(console, f"/incidents/{ids['wid1']}", token, status=403)
    assert refused == {"error": f"incident {ids['wid1']} is {outside}"}
    assert (await get(console, "/incidents/999999", token, status=404))["error"] == (
        "no such incident"
    )
    refused = await get(console, "/incidents?organization=org-w", token, status=403)
    assert refused == {"error": f"organization org-w is {outside}"}
    await get(console, "/alerts?organization=org-b", token, status=403)
    alerts = (await get(console, "/alerts", token))["alerts"]
    assert {a["organization_id"] for a in alerts} == {"org-a"}
    rows = await console.bridge.storage.query(
        "SELECT id FROM widget_alerts WHERE fingerprint = 'wid1'"
    )
    refused = await get(console, f"/alerts/widget-{rows[0]['id']}", token, status=403)
    assert refused == {"error": f"alert widget-{rows[0]['id']} is {outside}"}
    await get(console, "/alerts/widget-999999", token, status=404)
    for action in ("acknowledge", "resolve"):
        refused = await post(console, f"/incidents/{ids['wid1']}/{action}", token, status=403)
        assert outside in refused["error"]
    assert await console.bridge.storage.query(
        f"SELECT status FROM incidents WHERE id = {ids['wid1']}"  # noqa: S608
    ) == [{"status": "firing"}]
    assert await console.bridge.storage.query("SELECT 1 FROM alert_acknowledgements") == []


async def test_acknowledge_and_resolve_through_the_incident_actions(outaged):
    console = outaged
    ids = await incident_ids(console)
    viewer = await token_for(console, "viewer")
    refused = await console.post(
        f"/api/v1/incidents/{ids['pay0']}/acknowledge", headers=bearer(viewer)
    )
    assert refused.status == 403
    assert "responder" in (await refused.json())["error"]
    token = await token_for(console, "responder")
    done = await post(console, f"/incidents/{ids['pay0']}/acknowledge", token)
    assert done == {
        "incident_id": ids["pay0"],
        "action": "acknowledge",
        "changed": True,
        "status": "acknowledged",
    }
    again = await post(console, f"/incidents/{ids['pay0']}/acknowledge", token)
    assert again["changed"] is False
    events = (await get(console, f"/incidents/{ids['pay0']}", token))["timeline"]
    acked = [e for e in events if e["kind"] == "acknowledged"]
    assert acked[-1]["detail"] == {"by": "responder", "via": "api"}
    acks = await console.bridge.storage.query("SELECT username FROM alert_acknowledgements")
    assert {r["username"] for r in acks} == {"responder"}
    assert len(acks) == 4
    audit = await console.bridge.storage.query(
        "SELECT action, detail::text FROM console_audit WHERE action LIKE '%incident'"
    )
    assert audit
    assert '"via": "api"' in audit[0]["detail"]
    resolved = await post(console, f"/incidents/{ids['pay0']}/resolve", token)
    assert (resolved["status"], resolved["changed"]) == ("resolved", True)
    late = await console.post(f"/api/v1/incidents/{ids['pay0']}/acknowledge", headers=bearer(token))
    assert late.status == 409
    listed = await get(console, "/incidents?status=resolved", token)
    assert [i["id"] for i in listed["incidents"]] == [ids["pay0"]]


async def test_an_action_on_a_merged_incident_is_checked_against_the_survivor(outaged):
    """Attack: a token limited to org-w acts on its (merged) incident to reach the incident
    it went into, which is other organizations'. 403, and nothing changes."""
    console = outaged
    storage = console.bridge.storage
    widget, survivor = await merge_widget_into_outage(console)
    await add_limited(console, "wes", "responder", ("org-w", "org-a"))
    token = await token_for(console, "wes", organizations=("org-w",))
    assert (await get(console, f"/incidents/{widget}", token))["incident"]["id"] == widget
    events_before = await storage.query("SELECT count(*) AS n FROM incident_events")
    for action in ("acknowledge", "resolve"):
        refused = await post(console, f"/incidents/{widget}/{action}", token, status=403)
        assert refused == {
            "error": f"incident {widget} was merged into {survivor}, which is outside the"
            " token's organizations"
        }
    sql = f"SELECT id, status FROM incidents WHERE id IN ({widget}, {survivor})"  # noqa: S608
    assert {r["id"]: r["status"] for r in await storage.query(sql)} == {
        widget: "resolved",
        survivor: "firing",
    }
    assert await storage.query("SELECT 1 FROM alert_acknowledgements") == []
    assert await storage.query("SELECT count(*) AS n FROM incident_events") == events_before
    # the bridge's actions check the survivor too (a merge between the check and the action)
    with pytest.raises(OutsideScope):
        await console.bridge.actions.act(
            widget, "resolve", person_id="wes", via="api", within=("org-w",)
        )
    assert {r["id"]: r["status"] for r in await storage.query(sql)}[survivor] == "firing"
    # a token that sees the survivor acts on it, as every other channel does
    both = await token_for(console, "wes", name="both", organizations=("org-w", "org-a"))
    done = await post(console, f"/incidents/{widget}/acknowledge", both)
    assert (done["incident_id"], done["status"], done["changed"]) == (
        survivor,
        "acknowledged",
        True,
    )
    acks = await storage.query("SELECT fingerprint FROM alert_acknowledgements")
    assert [r["fingerprint"] for r in acks] == ["pay0"]  # org-a's alert of the survivor only


async def test_alerts_list_filter_page_and_one(outaged):
    console = outaged
    token = await token_for(console, "viewer")
    alerts = (await get(console, "/alerts?status=firing", token))["alerts"]
    assert len(alerts) == 6
    payment = await get(console, "/alerts?category=payment&organization=org-a", token)
    assert {a["alertname"] for a in payment["alerts"]} == {"PaymentFailureRatioHigh", "LegacyAlert"}
    critical = await get(console, "/alerts?severity=critical", token)
    assert [a["alertname"] for a in critical["alerts"]] == ["DatabaseErrorsHigh"]
    seen, cursor = [], ""
    while True:
        page = await get(console, f"/alerts?limit=4{cursor}", token)
        seen += [a["id"] for a in page["alerts"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(a["id"] for a in alerts)
    one = await get(console, f"/alerts/{alerts[0]['id']}", token)
    assert one == alerts[0]


@pytest.mark.parametrize(
    "path",
    [
        "/incidents/0",
        "/incidents/-1",
        "/incidents/1%20OR%201=1",
        "/incidents/1'--",
        "/incidents/99999999999999999999999",
        "/incidents/%EF%BC%91",  # a full-width digit
        "/alerts/payment-0",
        "/alerts/payment_alerts-1",
        "/alerts/payment-1;DROP TABLE incidents",
        "/alerts/-1",
        "/alerts/x",
        "/alerts/payment-99999999999999999999",
        "/nothing",
    ],
)
async def test_bad_ids_are_404_never_500(console, path):
    token = await token_for(console, "admin")
    body = await get(console, path, token, status=404)
    assert body["error"]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=501",
        "limit=99999999999999999999999999",
        "limit=-5",
        "limit=ten",
        "status=open",
        "severity=urgent",
        "cursor=abc",
        "cursor=99999999999999999999999",
    ],
)
async def test_bad_parameters_are_400(console, query):
    token = await token_for(console, "viewer")
    body = await get(console, f"/incidents?{query}", token, status=400)
    assert body["error"]


async def test_bad_alert_cursors_and_methods(console):
    token = await token_for(console, "viewer")
    assert (await get(console, "/alerts?cursor=%FF%FE", token, status=400))["error"]
    response = await console.put("/api/v1/incidents", headers=bearer(token))
    assert response.status == 405
    assert (await response.json())["error"]
