"""The Silences page and the silence form, over real Alertmanagers: two that are not clustered
and one where nothing listens. Listed from every one (merged by id, held by whom, how many
firing alerts each silences), made in every one, edited, expired; the form prefilled from an
alert or an incident, its preview; and what is refused (scopes, roles, CSRF, bad matchers)."""

from __future__ import annotations

import asyncio
import re

import pytest

from tests import plain_http
from tests.console.api_support import add_limited
from tests.console.silence_support import (
    NOWHERE,
    console_over,
    fire_everywhere,
    form_data,
    form_rows,
    held,
    new_org,
    pending_silence,
)
from tests.console.support import (
    alert_path,
    csrf_of,
    incident_ids,
    login,
    outage,
    real_alertmanager,
    switch_user,
)
from tests.ports import free_port


@pytest.fixture
async def two(db_url, aiohttp_client, console_alertmanager, second_alertmanager):
    """The console over both real Alertmanagers and an unreachable one."""
    return await console_over(
        db_url, aiohttp_client, console_alertmanager, second_alertmanager, NOWHERE
    )


def _name(url: str) -> str:
    return url.removeprefix("http://")


async def test_a_silence_from_an_alert_is_previewed_made_everywhere_and_listed(
    two, console_alertmanager, second_alertmanager
):
    ams = (console_alertmanager, second_alertmanager)
    org, other = new_org(), new_org()
    await fire_everywhere(two, ams, fingerprint="h1", organization_id=org, severity="high")
    await fire_everywhere(two, ams, fingerprint="c1", organization_id=org, severity="critical",
                          labels={"widget_id": "w-9"})  # fmt: skip
    await fire_everywhere(two, ams, fingerprint="o1", organization_id=other)
    csrf = await login(two, "responder")
    page = await two.get(f"/console/silences/new?alert={(await alert_path(two, 'h1'))[16:]}")
    assert page.status == 200
    text = await page.text()
    rows = form_rows(text)
    origin = re.search(r'name="origin" value="([^"]*)"', text).group(1)
    assert origin.startswith("alert:payment_alerts/")
    assert {r["name"]: r["use"] for r in rows} == {
        "alertname": True,
        "category": True,
        "organization_id": True,
        "severity": False,  # dropped by default
    }
    # the preview: the server matches the firing alerts (the critical sibling too, not the
    # other organization's), and nothing is made
    preview = await two.post("/console/silences/new", data=form_data(csrf, rows, action="preview"))
    html = await preview.text()
    assert preview.status == 200, html
    assert "Would silence 2 firing alerts" in html
    assert html.count('class="sev-') == 2
    assert "critical" in html
    assert held(console_alertmanager, org) == [] == held(second_alertmanager, org)
    # a regex matcher, Alertmanager's semantics (anchored): PaymentFailure alone matches none
    narrowed = [*rows, {"name": "alertname", "op": "=~", "value": "PaymentFailure"}]
    preview = await two.post(
        "/console/silences/new", data=form_data(csrf, narrowed, action="preview")
    )
    assert "Would silence 0 firing alerts" in await preview.text()

    created = await two.post(
        "/console/silences/new",
        data=form_data(csrf, rows, action="save", comment="deploy in progress", origin=origin),
        allow_redirects=False,
    )
    assert created.status == 303, await created.text()
    notice = created.headers["Location"]
    assert "NOT+in+127.0.0.1:9+(unreachable" in notice  # the unreachable one, said
    first, second = held(console_alertmanager, org), held(second_alertmanager, org)
    assert len(first) == 1
    assert len(second) == 1
    assert {m["name"] for m in first[0]["matchers"]} == {"alertname", "category", "organization_id"}
    assert first[0]["createdBy"] == "responder"
    assert first[0]["comment"] == "deploy in progress"

    pending = pending_silence(second_alertmanager, org)
    listing = await two.get("/console/silences")
    html = await listing.text()
    assert listing.status == 200  # an unreachable Alertmanager is no 500
    assert "Alertmanager <b>127.0.0.1:9</b>: unreachable" in html
    for silence, where in ((first[0], console_alertmanager), (second[0], second_alertmanager)):
        row = _row(html, silence["id"])
        assert "active" in row
        assert "2 firing alerts" in row
        assert _name(where) in row
        assert "deploy in progress" in row
        assert f"organization_id=&#34;{org}&#34;" in row
        assert re.search(r"(59m|1h00m) left", row), row
    row = _row(html, pending)
    assert "pending" in row
    assert "starts in" in row
    assert "amtool-user" in row
    audit = await two.bridge.storage.query(
        "SELECT action, fingerprint, detail::text FROM console_audit WHERE action = 'silenced'"
    )
    assert audit[0]["fingerprint"] == "h1"
    assert first[0]["id"] in audit[0]["detail"]


def _row(html: str, ident: str) -> str:
    match = re.search(rf'<tr class="silence[^"]*" id="silence-{ident}".*?</tr>', html, re.S)
    assert match, f"silence {ident} not listed"
    return match.group(0)


async def test_a_silence_is_edited_in_place_or_replaced_and_expired(
    two, console_alertmanager, second_alertmanager
):
    org = new_org()
    csrf = await login(two, "responder")
    rows = [{"name": "alertname", "value": "X"}, {"name": "organization_id", "value": org}]
    await two.post("/console/silences/new", data=form_data(csrf, rows, action="save"))
    ident = held(console_alertmanager, org)[0]["id"]
    edit = await two.get(f"/console/silences/{ident}/edit")
    assert edit.status == 200
    assert [(r["name"], r["value"]) for r in form_rows(await edit.text())] == [
        ("alertname", "X"),
        ("organization_id", org),
    ]
    # the comment and the end only: the same silence, updated in place
    kept = await two.post(
        f"/console/silences/{ident}/edit",
        data=form_data(csrf, rows, action="save", duration="4h", comment="longer"),
        allow_redirects=False,
    )
    assert kept.status == 303, await kept.text()
    now = plain_http.get(f"{console_alertmanager}/api/v2/silence/{ident}").json()
    assert now["comment"] == "longer"
    assert now["status"]["state"] == "active"
    # a matcher changed: Alertmanager replaces it (the old one expires)
    changed = [{"name": "alertname", "op": "=~", "value": "X|Y"}, rows[1]]
    replaced = await two.post(
        f"/console/silences/{ident}/edit",
        data=form_data(csrf, changed, action="save"),
        allow_redirects=False,
    )
    assert replaced.status == 303
    new = [s for s in held(console_alertmanager, org) if s["status"]["state"] == "active"]
    assert len(new) == 1
    assert new[0]["id"] != ident
    assert (
        plain_http.get(f"{console_alertmanager}/api/v2/silence/{ident}").json()["status"]["state"]
        == "expired"
    )
    assert "it+replaces" in replaced.headers["Location"]
    expire = await two.post(
        f"/console/silences/{new[0]['id']}/expire", data={"csrf": csrf}, allow_redirects=False
    )
    assert expire.status == 303
    assert all(s["status"]["state"] == "expired" for s in held(console_alertmanager, org))
    html = await (await two.get("/console/silences")).text()
    assert "ended" in _row(html, new[0]["id"])
    assert f"/silences/{new[0]['id']}/edit" not in html  # an expired one has no actions
    actions = await two.bridge.storage.query("SELECT action FROM console_audit ORDER BY id")
    assert [a["action"] for a in actions if "silence" in a["action"]] == [
        "silenced",
        "edited silence",
        "edited silence",
        "expired silence",
    ]
    # the second Alertmanager's copy of the first silence is its own, untouched
    assert [s["status"]["state"] for s in held(second_alertmanager, org)] == ["active"]


async def test_an_incident_prefills_its_names_and_shared_labels(two):
    org = new_org()
    for fingerprint, severity in (("i1", "high"), ("i2", "critical")):
        await fire_everywhere(two, (), fingerprint=fingerprint, organization_id=org,
                              severity=severity, labels={"widget_id": "w1"})  # fmt: skip
    await outage(two)  # the database alert and the payment alerts it causes: one incident
    ids = await incident_ids(two)
    await login(two, "responder")

    def rows_of(page: str) -> dict[str, tuple[str, str, bool]]:
        return {r["name"]: (r["op"], r["value"], r["use"]) for r in form_rows(page)}

    one = rows_of(await (await two.get(f"/console/silences/new?incident={ids['i1']}")).text())
    assert one == {
        "alertname": ("=", "PaymentFailureRateHigh", True),
        "category": ("=", "payment", True),
        "organization_id": ("=", org, True),
        "widget_id": ("=", "w1", False),  # shared, but dropped by default
    }  # severity differs between its alerts: not offered
    page = await (await two.get(f"/console/silences/new?incident={ids['pay0']}")).text()
    assert rows_of(page) == {
        "alertname": ("=~", "DatabaseErrorsHigh|PaymentFailureRatioHigh", True)
    }
    assert (await two.get("/console/silences/new?incident=999999")).status == 404
    assert (await two.get("/console/silences/new?alert=payment_alerts/999999")).status == 404
    # a user limited to another organization: the incident and its alerts are 403 to them
    await add_limited(two, "lim", "responder", ("org-elsewhere",))
    await switch_user(two, "lim")
    refused = await two.get(f"/console/silences/new?incident={ids['i1']}")
    assert refused.status == 403
    assert f"Incident #{ids['i1']} is outside your organizations." in await refused.text()
    rows = await two.bridge.storage.query("SELECT id FROM payment_alerts WHERE fingerprint = 'i1'")
    refused = await two.get(f"/console/silences/new?alert=payment_alerts/{rows[0]['id']}")
    assert refused.status == 403
    assert "This alert is outside your organizations." in await refused.text()


async def test_refusals_change_nothing(two, console_alertmanager, second_alertmanager):
    org, theirs = new_org(), new_org()
    await add_limited(two, "lim", "responder", (org,))
    csrf = await login(two, "responder")
    mine_rows = [{"name": "alertname", "value": "X"}, {"name": "organization_id", "value": org}]
    await two.post("/console/silences/new", data=form_data(csrf, mine_rows, action="save"))
    their_rows = [{"name": "alertname", "value": "X"}, {"name": "organization_id", "value": theirs}]
    await two.post("/console/silences/new", data=form_data(csrf, their_rows, action="save"))
    mine, other = held(console_alertmanager, org)[0], held(console_alertmanager, theirs)[0]

    # bad matchers: 400 naming the problem, nothing made
    for rows, problem in (
        ([{"name": "alertname", "op": "=~", "value": "("}], "invalid regex"),
        ([{"name": "alertname", "op": "=~", "value": "a" * 513}], "at most 512"),
        ([{"name": "alertname", "op": "=~", "value": "(?=x)"}], "invalid regex"),
        ([{"name": "alertname", "op": "=~", "value": ".*"}], "empty string"),
        ([{"name": "bad name", "value": "x"}], "label name"),
        ([{"name": "alertname", "op": "~~", "value": "x"}], "operator"),
        ([], "at least one matcher"),
    ):
        refused = await two.post(
            "/console/silences/new", data=form_data(csrf, rows, action="save", comment=theirs)
        )
        assert refused.status == 400, (rows, await refused.text())
        assert problem in await refused.text(), problem
    bad_end = await two.post(
        "/console/silences/new",
        data=form_data(csrf, mine_rows, action="save", ends_at="2001-01-01T00:00"),
    )
    assert bad_end.status == 400
    assert "in the future" in await bad_end.text()
    assert len(held(console_alertmanager, org)) == 1
    assert all(
        s["comment"] != theirs
        for s in plain_http.get(f"{console_alertmanager}/api/v2/silences").json()
    )

    # CSRF: a POST without (or with another session's) token is refused
    for data in ({}, {"csrf": "0" * 64}):
        response = await two.post(f"/console/silences/{mine['id']}/expire", data=data)
        assert response.status == 403
    response = await two.post(
        "/console/silences/new", data={**form_data(csrf, mine_rows, action="save"), "csrf": ""}
    )
    assert response.status == 403

    # a viewer reads, never acts
    csrf = await switch_user(two, "viewer")
    html = await (await two.get("/console/silences")).text()
    assert mine["id"] in html
    assert "/expire" not in html
    assert "New silence" not in html
    assert (
        await two.post(f"/console/silences/{mine['id']}/expire", data={"csrf": csrf})
    ).status == 403
    assert (await two.get("/console/silences/new")).status == 403
    assert (await two.get(f"/console/silences/{mine['id']}/edit")).status == 403
    assert (
        await two.post(
            f"/console/silences/{mine['id']}/edit", data=form_data(csrf, mine_rows, action="save")
        )
    ).status == 403

    # a user limited to organizations: sees and acts on theirs only
    csrf = await switch_user(two, "lim")
    html = await (await two.get("/console/silences")).text()
    assert mine["id"] in html
    assert other["id"] not in html
    for path in (f"/silences/{other['id']}/expire", f"/silences/{other['id']}/edit"):
        response = await two.post(f"/console{path}", data=form_data(csrf, mine_rows, action="save"))
        assert response.status == 403
        assert "This silence is outside your organizations." in await response.text()
    assert (await two.get(f"/console/silences/{other['id']}/edit")).status == 403
    refused = await two.post(
        "/console/silences/new", data=form_data(csrf, their_rows, action="save")
    )
    assert refused.status == 403
    unpinned = [{"name": "alertname", "value": "X"}]
    assert (
        await two.post("/console/silences/new", data=form_data(csrf, unpinned, action="save"))
    ).status == 403
    # nor may they edit theirs into another's
    moved = await two.post(
        f"/console/silences/{mine['id']}/edit", data=form_data(csrf, their_rows, action="save")
    )
    assert moved.status == 403
    states = {
        s["id"]: s["status"]["state"]
        for s in plain_http.get(f"{console_alertmanager}/api/v2/silences").json()
    }
    assert states[mine["id"]] == "active"
    assert states[other["id"]] == "active"
    assert len(held(console_alertmanager, theirs)) == 1
    # and theirs they expire
    done = await two.post(
        f"/console/silences/{mine['id']}/expire", data={"csrf": csrf}, allow_redirects=False
    )
    assert done.status == 303
    assert (await two.get("/console/silences/not-an-id!/edit")).status == 404
    csrf_of(await (await two.get("/console/silences")).text())


async def test_an_ha_cluster_gets_one_silence_held_by_each_member(db_url, aiohttp_client):
    """Two clustered Alertmanagers share silences by gossip: the console makes the silence
    once (not once per member), lists it once, held by both, and one expiry reaches both."""
    ports = (free_port(), free_port())
    with (
        real_alertmanager(cluster_port=ports[0], peers=(f"127.0.0.1:{ports[1]}",)) as one,
        real_alertmanager(cluster_port=ports[1], peers=(f"127.0.0.1:{ports[0]}",)) as other,
    ):
        await _until(lambda: all(len(_peers(url)) == 2 for url in (one, other)))
        console = await console_over(db_url, aiohttp_client, one, other)
        org = new_org()
        csrf = await login(console, "responder")
        rows = [{"name": "alertname", "value": "X"}, {"name": "organization_id", "value": org}]
        created = await console.post(
            "/console/silences/new", data=form_data(csrf, rows, action="save"),
            allow_redirects=False,
        )  # fmt: skip
        assert created.status == 303
        assert "NOT" not in created.headers["Location"]
        await _until(lambda: len(held(other, org)) == 1)
        assert [s["id"] for s in held(one, org)] == [s["id"] for s in held(other, org)]
        ident = held(one, org)[0]["id"]
        row = _row(await (await console.get("/console/silences")).text(), ident)
        assert f"{_name(one)}, {_name(other)}" in row
        await console.post(f"/console/silences/{ident}/expire", data={"csrf": csrf})
        await _until(lambda: [s["status"]["state"] for s in held(other, org)] == ["expired"])


def _peers(url: str) -> list[dict]:
    return plain_http.get(f"{url}/api/v2/status").json()["cluster"].get("peers") or []


async def _until(condition, seconds: float = 30.0) -> None:
    """Waits for the Alertmanagers' gossip (a real protocol on its own timers)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "the cluster did not converge"
        await asyncio.sleep(0.1)
