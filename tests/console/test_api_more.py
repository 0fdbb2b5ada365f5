"""The API's silences (a real Alertmanager), settings, on-call, OpenAPI document, body limits."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

from bridge.app import BRIDGE
from bridge.storage.console import AuditEntry
from bridge.storage.types import PreferenceRow
from console.api.routes import ROUTES, openapi_document
from passiton_monitoring.bridge_process import create_bridge_app
from tests import plain_http
from tests.bridge.support import T0, BridgeClient, Clock, count, make_config, notifiers
from tests.console.api_support import add_limited, bearer, get, post, token_for
from tests.oncall.bridge_support import write_oncall


def _silence(org: str | None = "org-a", **extra):
    matchers = [{"name": "alertname", "value": "PaymentFailureRatioHigh"}]
    if org:
        matchers.append({"name": "organization_id", "value": org})
    return {"matchers": matchers, "duration_seconds": 3600, "comment": "deploy", **extra}


def _org() -> str:
    return f"org-{uuid.uuid4().hex[:8]}"  # one Alertmanager serves every test of the package


async def test_silences_are_created_listed_and_expired_in_alertmanager(console):
    token = await token_for(console, "responder")
    org = _org()
    created = await post(console, "/silences", token, status=201, json=_silence(org))
    in_am = plain_http.get(f"{console.alertmanager}/api/v2/silence/{created['id']}").json()
    assert in_am["createdBy"] == "responder (api)"
    assert in_am["status"]["state"] == "active"
    listed = [
        s for s in (await get(console, "/silences", token))["silences"] if s["id"] == created["id"]
    ]
    assert {"name": "organization_id", "value": org, "isRegex": False, "isEqual": True} in (
        listed[0]["matchers"]
    )
    assert listed[0]["comment"] == "deploy"
    response = await console.delete(f"/api/v1/silences/{created['id']}", headers=bearer(token))
    assert response.status == 204
    in_am = plain_http.get(f"{console.alertmanager}/api/v2/silence/{created['id']}").json()
    assert in_am["status"]["state"] == "expired"
    audit = await console.bridge.storage.query("SELECT action FROM console_audit ORDER BY id")
    assert [r["action"] for r in audit] == ["silenced", "expired silence"]


async def test_silence_matchers_are_validated(console):
    token = await token_for(console, "responder")
    before = plain_http.get(f"{console.alertmanager}/api/v2/silences").json()
    cases = [
        ({"matchers": []}, "invalid body"),
        ({"matchers": [{"name": "bad name", "value": "x"}]}, "invalid body"),
        ({"matchers": [{"name": "a", "value": "(", "isRegex": True}]}, "invalid regex"),
        ({"matchers": [{"name": "a", "value": ".*", "isRegex": True}]}, "empty string"),
        ({"matchers": [{"name": "a", "value": ""}]}, "empty string"),
        ({"duration_seconds": 10}, "invalid body"),
        ({"duration_seconds": 8 * 86400}, "invalid body"),
        ({"comment": ""}, "invalid body"),
        ({"extra": 1}, "invalid body"),
    ]
    for change, message in cases:
        body = {**_silence(), **change}
        refused = await post(console, "/silences", token, status=400, json=body)
        assert message in refused["error"], (change, refused)
    for raw in (b"not json", b"[]", b'{"matchers": "x"}'):
        response = await console.post("/api/v1/silences", headers=bearer(token), data=raw)
        assert response.status == 400
    huge = b'{"comment": "' + b"x" * 20_000 + b'"}'
    response = await console.post("/api/v1/silences", headers=bearer(token), data=huge)
    assert response.status == 413
    assert plain_http.get(f"{console.alertmanager}/api/v2/silences").json() == before


async def test_silences_of_a_limited_token_stay_in_its_organizations(console):
    org_a, org_b = _org(), _org()
    await add_limited(console, "bea", "responder", (org_a,))
    limited = await token_for(console, "bea")
    everyone = await token_for(console, "responder")
    other = await post(console, "/silences", everyone, status=201, json=_silence(org_b))
    anyone = await post(console, "/silences", everyone, status=201, json=_silence(None))
    mine = await post(console, "/silences", limited, status=201, json=_silence(org_a))
    for body in (_silence(org_b), _silence(None)):
        await post(console, "/silences", limited, status=403, json=body)
    listed = (await get(console, "/silences", limited))["silences"]
    assert [s["id"] for s in listed] == [mine["id"]]
    every = {s["id"] for s in (await get(console, "/silences", everyone))["silences"]}
    assert {other["id"], anyone["id"], mine["id"]} <= every
    response = await console.delete(f"/api/v1/silences/{other['id']}", headers=bearer(limited))
    assert response.status == 403
    assert (await response.json())["error"] == (
        f"silence {other['id']} is outside the token's organizations"
    )
    states = {s["id"]: s["status"] for s in (await get(console, "/silences", everyone))["silences"]}
    assert states[other["id"]] == "active"  # not expired
    for ident in ("nope", "00000000-0000-0000-0000-000000000000"):
        response = await console.delete(f"/api/v1/silences/{ident}", headers=bearer(everyone))
        assert response.status == 404
    viewer = await token_for(console, "viewer")
    response = await console.delete(f"/api/v1/silences/{mine['id']}", headers=bearer(viewer))
    assert response.status == 403


async def test_settings_for_every_role_within_its_organizations_contacts_masked_for_viewers(
    console,
):
    store = console.bridge.storage.console()
    recipients = {"email": ["alice@example.org"], "sms": ["+15550000001"]}
    row = PreferenceRow(
        "org-a", {"critical": ["slack"]}, recipients, "high", time(22), time(6), "UTC"
    )
    await store.save_preference(row, T0, AuditEntry(T0, "admin", "saved preferences"))
    admin = await token_for(console, "admin")
    settings = (await get(console, "/settings", admin))["organizations"]
    assert settings == [
        {
            "organization_id": "org-a",
            "configured": True,
            "channels": {"critical": ["slack"]},
            "recipients": recipients,
            "min_severity": "high",
            "quiet_hours_start": "22:00:00",
            "quiet_hours_end": "06:00:00",
            "timezone": "UTC",
            "recipients_masked": False,
        }
    ]
    one = await get(console, "/settings?organization=org-z", admin)
    assert one["organizations"][0]["configured"] is False
    masked = {"email": ["a•••@example.org"], "sms": ["+1•••••0001"]}
    # a viewer of every organization reads every organization's settings, contacts masked
    viewer = await get(console, "/settings", await token_for(console, "viewer"))
    [seen] = viewer["organizations"]
    assert (seen["recipients"], seen["recipients_masked"]) == (masked, True)
    assert seen["channels"] == {"critical": ["slack"]}
    # so does an admin's token made with the viewer role
    as_viewer = await token_for(console, "admin", name="ro", role="viewer")
    assert (await get(console, "/settings", as_viewer))["organizations"][0]["recipients"] == masked
    await add_limited(console, "bea", "viewer", ("org-a", "org-b"))
    limited = await token_for(console, "bea")
    mine = (await get(console, "/settings", limited))["organizations"]
    assert [(s["organization_id"], s["configured"], s["recipients"]) for s in mine] == [
        ("org-a", True, masked),
        ("org-b", False, {}),
    ]
    refused = await get(console, "/settings?organization=org-c", limited, status=403)
    assert refused == {"error": "organization org-c is outside the token's organizations"}
    # an organization admin reads their organizations' contacts in full, no other's
    await add_limited(console, "oda", "admin", ("org-a",))
    org_admin = await token_for(console, "oda")
    [own] = (await get(console, "/settings", org_admin))["organizations"]
    assert (own["organization_id"], own["recipients"]) == ("org-a", recipients)
    refused = await get(console, "/settings?organization=org-b", org_admin, status=403)
    assert refused == {"error": "organization org-b is outside the token's organizations"}


async def test_an_organization_admin_token_changes_its_organizations_settings_only(console):
    await add_limited(console, "oda", "admin", ("org-a",))
    token = await token_for(console, "oda")
    body = {
        "channels": {"critical": ["sms", "slack"]},
        "email": ["alice@example.org"],
        "sms": ["+15550000001"],
        "min_severity": "high",
        "quiet_hours_start": "22:00",
        "quiet_hours_end": "06:00",
        "timezone": "Europe/Berlin",
    }
    response = await console.put("/api/v1/settings/org-a", headers=bearer(token), json=body)
    assert response.status == 200, await response.text()
    saved = await response.json()
    assert saved["recipients"] == {"email": ["alice@example.org"], "sms": ["+15550000001"]}
    assert saved["channels"] == {"critical": ["sms", "slack"]}
    routed = console.bridge.router.preferences("org-a")  # routing reloaded
    assert (routed.min_severity, routed.timezone) == ("high", "Europe/Berlin")
    path = "/api/v1/settings/org-a/thresholds/PaymentFailureRatioHigh"
    response = await console.put(path, headers=bearer(token), json={"threshold": 0.3})
    assert response.status == 204, await response.text()
    assert ("org-a", "PaymentFailureRatioHigh", 0.3) in console.bridge.router.thresholds()
    audit = await console.bridge.storage.query("SELECT action, detail FROM console_audit")
    assert [r["action"] for r in audit] == ["changed preferences", "changed threshold"]
    assert '"via": "api"' in audit[0]["detail"]

    # bad input: 400 naming the problem, nothing changed
    for bad, problem in (
        ({"sms": ["0170 123456"]}, "E.164"),
        ({"channels": {"urgent": ["sms"]}}, "unknown severity"),
        ({"channels": {"high": ["telegram"]}}, "unknown telegram"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"email": ["alice@example"]}, "e-mail address not valid"),
        ({"extra": 1}, "invalid body"),
    ):
        response = await console.put("/api/v1/settings/org-a", headers=bearer(token), json=bad)
        assert response.status == 400, bad
        assert problem in (await response.json())["error"], bad
    response = await console.put(path, headers=bearer(token), json={"threshold": 7})
    assert response.status == 400
    assert "within" in (await response.json())["error"]
    bad_name = "/api/v1/settings/org-a/thresholds/NotTunable"
    response = await console.put(bad_name, headers=bearer(token), json={"threshold": 0.3})
    assert response.status == 400

    # another organization's: 403, nothing stored
    for method, other in (
        ("PUT", "/api/v1/settings/org-b"),
        ("PUT", "/api/v1/settings/org-b/thresholds/PaymentFailureRatioHigh"),
        ("DELETE", "/api/v1/settings/org-b/thresholds/PaymentFailureRatioHigh"),
    ):
        response = await console.request(method, other, headers=bearer(token), json={})
        assert response.status == 403
        assert await response.json() == {
            "error": "organization org-b is outside the token's organizations"
        }
    store = console.bridge.storage.console()
    assert await store.preference("org-b") is None
    assert await store.configurations("org-b") == []
    # a responder (or a viewer token of the admin) changes nothing
    for weaker in (
        await token_for(console, "responder"),
        await token_for(console, "oda", name="ro", role="viewer"),
    ):
        response = await console.put("/api/v1/settings/org-a", headers=bearer(weaker), json={})
        assert response.status == 403
    response = await console.delete(path, headers=bearer(token))
    assert response.status == 204
    assert await store.configurations("org-a") == []
    assert await count(console.bridge.storage, "console_audit") == 3


async def test_oncall_without_a_configuration(console):
    token = await token_for(console, "viewer")
    assert await get(console, "/oncall", token) == {
        "configured": False,
        "at": T0.isoformat().replace("+00:00", "Z"),
        "schedules": [],
    }
    assert (await get(console, "/oncall?at=yesterday", token, status=400))["error"]


async def test_oncall_now_and_next_with_overrides(db_url, aiohttp_client, tmp_path):
    config = make_config(db_url, oncall=write_oncall(tmp_path))
    clock = Clock(T0)
    app = create_bridge_app(config, notifiers=notifiers("slack"), clock=clock, workers=False)
    client = BridgeClient(await aiohttp_client(app), app[BRIDGE], {}, clock)
    await client.bridge.storage.console().upsert_user("viewer", "x", "viewer", T0)
    token = await token_for(client, "viewer")
    body = await get(client, "/oncall", token)
    assert body["configured"] is True
    (primary,) = body["schedules"]
    assert primary["id"] == "primary"
    assert primary["time_zone"] == "Europe/Berlin"
    assert [s["person_id"] for s in primary["now"]] == ["alice"]
    assert primary["now"][0]["name"] == "Alice Example"
    assert primary["next"]["person_id"] == "bob"
    await client.bridge.storage.add_override(
        "primary", "bob", T0 - timedelta(hours=1), T0 + timedelta(hours=2), replaces="alice"
    )
    covered = (await get(client, "/oncall", token))["schedules"][0]
    assert [s["person_id"] for s in covered["now"]] == ["bob"]
    assert covered["now"][0]["override_id"] is not None
    later = await get(client, "/oncall?at=2026-03-02T09:30:00Z", token)
    assert [s["person_id"] for s in later["schedules"][0]["now"]] == ["bob"]


async def test_the_openapi_document_describes_every_route(console):
    response = await console.get("/api/v1/openapi.json")
    assert response.status == 200
    served = await response.json()
    assert served == openapi_document()
    for route in ROUTES:
        operation = served["paths"][f"/api/v1{route.path}"][route.method.lower()]
        assert str(route.status) in operation["responses"]
        assert "401" in operation["responses"]
    assert served["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


async def test_nul_and_control_characters_are_never_a_500(console):
    """Found by schemathesis: PostgreSQL holds no NUL (text or jsonb)."""
    token = await token_for(console, "admin")
    for path in ("/incidents", "/alerts", "/settings"):
        await get(console, f"{path}?organization=org%00a", token, status=400)
    body = _silence(_org(), comment="deploy\x00\x07 done")
    created = await post(console, "/silences", token, status=201, json=body)
    audit = await console.bridge.storage.query("SELECT detail::text FROM console_audit")
    assert created["id"] in audit[0]["detail"]
    assert "\\u0000" not in audit[0]["detail"]
