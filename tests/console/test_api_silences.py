"""The API's silences over several Alertmanagers (two real ones, not clustered, and one where
nothing listens): listed from every one, made in every one, edited (in place or replaced),
previewed; and what a limited or a viewer's token may not do."""

from __future__ import annotations

import pytest

from tests.console.api_support import add_limited, bearer, get, post, token_for
from tests.console.silence_support import NOWHERE, console_over, fire_everywhere, held, new_org


@pytest.fixture
async def two(db_url, aiohttp_client, console_alertmanager, second_alertmanager):
    return await console_over(
        db_url, aiohttp_client, console_alertmanager, second_alertmanager, NOWHERE
    )


def _silence(org: str | None, name: str = "PaymentFailureRateHigh", **extra):
    matchers = [{"name": "alertname", "value": name}]
    if org:
        matchers.append({"name": "organization_id", "value": org})
    return {"matchers": matchers, "duration_seconds": 3600, "comment": "deploy", **extra}


async def put(console, path: str, token: str, status: int, **kwargs):
    response = await console.put(f"/api/v1{path}", headers=bearer(token), **kwargs)
    assert response.status == status, await response.text()
    return await response.json()


async def test_silences_everywhere_edited_and_previewed(
    two, console_alertmanager, second_alertmanager
):
    ams = (console_alertmanager, second_alertmanager)
    org, other = new_org(), new_org()
    await fire_everywhere(two, ams, fingerprint="a1", organization_id=org, severity="high")
    await fire_everywhere(two, ams, fingerprint="a2", organization_id=org, severity="low")
    await fire_everywhere(two, ams, fingerprint="b1", organization_id=other)
    token = await token_for(two, "responder")

    preview = await post(two, "/silences/preview", token, json={"matchers": [
        {"name": "organization_id", "value": org},
        {"name": "severity", "value": "hi.*", "isRegex": True},
    ]})  # fmt: skip
    assert preview["total"] == 1
    assert [a["labels"]["severity"] for a in preview["alerts"]] == ["high"]

    created = await post(two, "/silences", token, status=201, json=_silence(org))
    assert len(created["alertmanagers"]) == 2  # one silence in each (not one cluster)
    assert list(created["failed"]) == ["127.0.0.1:9"]
    assert [s["id"] for s in held(console_alertmanager, org)] == [created["id"]]
    assert len(held(second_alertmanager, org)) == 1

    listed = await get(two, "/silences", token)
    assert listed["unreachable"] == {"127.0.0.1:9": "unreachable (ConnectError)"}
    ours = {s["id"]: s for s in listed["silences"] if s["comment"] == "deploy"}
    mine = ours[created["id"]]
    assert mine["alertmanagers"] == [console_alertmanager.removeprefix("http://")]
    assert mine["silenced_alerts"] == 2

    # the comment only: in place, the same id
    edited = await put(two, f"/silences/{created['id']}", token, 200,
                       json=_silence(org, comment="longer"))  # fmt: skip
    assert edited == {"id": created["id"], "replaced": created["id"]}
    # a matcher changed: Alertmanager replaces it
    replaced = await put(two, f"/silences/{created['id']}", token, 200,
                         json=_silence(org, name="Other"))  # fmt: skip
    assert replaced["id"] != created["id"]
    states = {s["id"]: s["status"]["state"] for s in held(console_alertmanager, org)}
    assert states == {created["id"]: "expired", replaced["id"]: "active"}
    await put(two, f"/silences/{created['id']}", token, 409, json=_silence(org))
    bad = _silence(org) | {"matchers": [{"name": "a", "value": "x{2000}", "isRegex": True}]}
    refused = await put(two, f"/silences/{replaced['id']}", token, 400, json=bad)
    assert "invalid regex" in refused["error"]
    long = _silence(org) | {"matchers": [{"name": "a", "value": "x" * 600, "isRegex": True}]}
    assert "at most 512" in (await post(two, "/silences", token, status=400, json=long))["error"]
    response = await two.delete(f"/api/v1/silences/{replaced['id']}", headers=bearer(token))
    assert response.status == 204
    audit = await two.bridge.storage.query("SELECT action FROM console_audit ORDER BY id")
    assert [a["action"] for a in audit] == [
        "silenced",
        "edited silence",
        "edited silence",
        "expired silence",
    ]


async def test_limited_and_viewer_tokens_cannot_edit_others_silences(two, console_alertmanager):
    org_a, org_b = new_org(), new_org()
    await add_limited(two, "bea", "responder", (org_a,))
    limited = await token_for(two, "bea")
    everyone = await token_for(two, "responder")
    other = await post(two, "/silences", everyone, status=201, json=_silence(org_b))
    mine = await post(two, "/silences", limited, status=201, json=_silence(org_a))
    refused = await put(two, f"/silences/{other['id']}", limited, 403, json=_silence(org_a))
    assert refused == {"error": f"silence {other['id']} is outside the token's organizations"}
    await put(two, f"/silences/{mine['id']}", limited, 403, json=_silence(org_b))
    await put(two, f"/silences/{mine['id']}", limited, 403, json=_silence(None))
    viewer = await token_for(two, "viewer")
    await put(two, f"/silences/{mine['id']}", viewer, 403, json=_silence(org_a))
    await post(two, "/silences/preview", viewer, status=403, json={"matchers": [
        {"name": "organization_id", "value": org_a}]})  # fmt: skip
    states = {s["id"]: s["status"]["state"] for s in held(console_alertmanager, org_a)}
    assert states == {mine["id"]: "active"}
    assert [s["status"]["state"] for s in held(console_alertmanager, org_b)] == ["active"]
    assert [s["matchers"] for s in held(console_alertmanager, org_a)] == [
        [
            {"isEqual": True, "isRegex": False, "name": "alertname",
             "value": "PaymentFailureRateHigh"},
            {"isEqual": True, "isRegex": False, "name": "organization_id", "value": org_a},
        ]
    ]  # fmt: skip


async def test_no_alertmanager_answering_is_a_502(db_url, aiohttp_client):
    console = await console_over(db_url, aiohttp_client, NOWHERE)
    token = await token_for(console, "responder")
    refused = await get(console, "/silences", token, status=502)
    assert "unreachable" in refused["error"]
    await post(console, "/silences", token, status=502, json=_silence(new_org()))
    ident = "00000000-0000-0000-0000-000000000000"
    await put(console, f"/silences/{ident}", token, 502, json=_silence(new_org()))
