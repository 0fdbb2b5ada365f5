"""Incidents on the console: the Now page lists them (expandable to their alerts), an
incident's page with its merged timeline, acknowledging an incident (and its alerts), the
incident of an alert, users limited to some organizations, ids from the URL.

The incidents are made by the bridge's own ingest (Alertmanager webhooks into the bridge
process's app), on PostgreSQL."""

from __future__ import annotations

import argparse
import asyncio
import io
import re

import pytest

from bridge.storage import open_storage
from bridge.storage.console import AuditEntry, IncidentAck
from console.cli import cmd_user
from tests.bridge.support import T0, count, make_config
from tests.console.support import (
    ORGS,
    PASSWORD_HASH,
    alert_path,
    fire,
    incident_ids,
    login,
    merge_widget_into_outage,
    outage,
    switch_user,
)


async def text(console, path: str, status: int = 200) -> str:
    response = await console.get(path)
    assert response.status == status, (path, response.status)
    return await response.text()


def incident_block(html: str, ident: int) -> str:
    """The incident's rows on the Now page (its tbody)."""
    match = re.search(rf'<tbody [^>]*id="incident-{ident}".*?</tbody>', html, re.S)
    assert match, f"incident {ident} is not on the page"
    return match.group(0)


async def test_now_page_lists_incidents_with_their_alerts_and_the_alerts_of_none(console):
    await outage(console)
    ids = await incident_ids(console)
    big, widget = ids["pay0"], ids["wid1"]
    assert ids["pay1"] == ids["pay2"] == ids["db1"] == big != widget
    assert ids["old1"] is None
    await login(console, "viewer")
    html = await text(console, "/console/")
    assert "2 firing</span> incidents" in html
    assert "6 alerts firing" in html
    # the most severe first; each with its probable cause, organizations, age, state
    assert html.index(f'id="incident-{big}"') < html.index(f'id="incident-{widget}"')
    block = incident_block(html, big)
    assert f'data-href="/console/incidents/{big}"' in block
    assert "DatabaseErrorsHigh and 3 related alerts across 3 organizations" in block
    assert '<td class="cause">DatabaseErrorsHigh</td>' in block
    for org in ORGS:
        assert f'title="only {org}">{org}</a>' in block
    assert '<span class="chip state firing">firing</span>' in block
    assert 'title="opened 2026-03-01 09:00:00 UTC">30s</td>' in block  # the test's clock
    assert ">4/4</td>" in block
    # its alerts, collapsed until opened (a link that works without the script too)
    for fp in ("pay0", "pay1", "pay2", "db1"):
        assert f'data-href="{await alert_path(console, fp)}"' in block
    assert block.count('<tr class="member') == 4
    assert 'class="incident sev-critical state-firing"' in block
    assert f'href="?open={big}#incident-{big}"' in block
    opened = incident_block(await text(console, f"/console/?open={big}"), big)
    assert 'state-firing open"' in opened
    assert 'aria-expanded="true"' in opened
    for fp in ("pay0", "pay1", "pay2", "db1"):
        assert f'data-href="{await alert_path(console, fp)}"' in opened
    assert opened.count('<tr class="member') == 4
    # the alert stored before incidents still shows, on its own
    loose = html[html.index("without an incident") :]
    assert "LegacyAlert" in loose
    assert "LegacyAlert" not in incident_block(html, big)
    assert "WidgetLoadErrorRatioHigh" in incident_block(html, widget)
    # the viewer acknowledges nothing
    assert "ack all" not in html


async def test_acknowledging_an_incident_acknowledges_its_firing_alerts(console):
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    storage = console.bridge.storage
    # one of its alerts resolves first: nothing to acknowledge there
    console.clock.advance(60)
    await fire(
        console,
        name="PaymentFailureRatioHigh",
        fingerprint="pay2",
        organization_id="org-c",
        status="resolved",
        ends_at=console.clock(),
    )
    token = await login(console, "viewer")
    refused = await console.post(f"/console/incidents/{big}/acknowledge", data={"csrf": token})
    assert refused.status == 403
    token = await switch_user(console, "responder")
    forged = await console.post(f"/console/incidents/{big}/acknowledge", data={"csrf": "0" * 64})
    assert forged.status == 403
    assert await count(storage, "alert_acknowledgements") == 0

    console.clock.advance(60)
    response = await console.post(
        f"/console/incidents/{big}/acknowledge", data={"csrf": token, "note": "on <it>"}
    )
    assert response.status == 200
    assert str(response.url.path) == f"/console/incidents/{big}"
    page = await response.text()
    assert f"incident #{big} acknowledged with 3 alerts" in page
    assert "Acknowledged by <b>responder</b> via console" in page
    assert "on &lt;it&gt;" in page
    rows = await storage.query(
        f"SELECT status, acknowledged_at FROM incidents WHERE id = {big}"  # noqa: S608
    )
    assert rows == [{"status": "acknowledged", "acknowledged_at": console.clock()}]
    events = await storage.query(
        "SELECT kind, detail, at FROM incident_events"  # noqa: S608
        f" WHERE incident_id = {big} AND kind = 'acknowledged'"
    )
    assert len(events) == 1
    assert '"by": "responder"' in events[0]["detail"]
    assert '"via": "console"' in events[0]["detail"]
    acked = await storage.query(
        "SELECT fingerprint, username, note FROM alert_acknowledgements ORDER BY fingerprint"
    )
    assert [(a["fingerprint"], a["username"], a["note"]) for a in acked] == [
        ("db1", "responder", "on <it>"),
        ("pay0", "responder", "on <it>"),
        ("pay1", "responder", "on <it>"),
    ]
    # audited: the incident and each alert (which shows it on its own page)
    audit = await storage.query("SELECT action, fingerprint FROM console_audit ORDER BY id")
    actions = [(a["action"], a["fingerprint"]) for a in audit if a["action"] != "login"]
    assert sorted(actions, key=str) == sorted(
        [
            ("acknowledged", "db1"),
            ("acknowledged", "pay0"),
            ("acknowledged", "pay1"),
            ("acknowledged incident", None),
        ],
        key=str,
    )
    alert_page = await text(console, await alert_path(console, "pay0"))
    assert "Acknowledged by <b>responder</b>" in alert_page
    assert f'href="/console/incidents/{big}">incident #{big}' in alert_page
    now = await text(console, "/console/")
    assert '<span class="chip state acknowledged">acknowledged</span>' in incident_block(now, big)

    again = await console.post(f"/console/incidents/{big}/acknowledge", data={"csrf": token})
    assert "already acknowledged" in await again.text()
    assert await count(storage, "alert_acknowledgements") == 3

    # an alert joining the acknowledged incident keeps it acknowledged; acknowledging again
    # takes the newcomer in
    console.clock.advance(60)
    await fire(
        console,
        name="PaymentFailureRatioHigh",
        fingerprint="pay3",
        organization_id="org-d",
        severity="high",
    )
    assert (await incident_ids(console))["pay3"] == big
    assert await storage.query(f"SELECT status FROM incidents WHERE id = {big}") == [  # noqa: S608
        {"status": "acknowledged"}
    ]
    page = await (
        await console.post(
            f"/console/incidents/{big}/acknowledge", data={"csrf": token, "from": "now"}
        )
    ).text()
    assert f"incident #{big} acknowledged with 1 alert" in page
    assert '<span class="count">' in page  # back on the Now page
    assert await count(storage, "alert_acknowledgements") == 4

    # it resolves: resolved stays resolved
    console.clock.advance(60)
    for fp, org, name, category in (
        ("pay0", "org-a", "PaymentFailureRatioHigh", "payment"),
        ("pay1", "org-b", "PaymentFailureRatioHigh", "payment"),
        ("pay3", "org-d", "PaymentFailureRatioHigh", "payment"),
        ("db1", None, "DatabaseErrorsHigh", "system"),
    ):
        await fire(
            console,
            name=name,
            fingerprint=fp,
            organization_id=org,
            category=category,
            status="resolved",
            ends_at=console.clock(),
        )
    late = await console.post(f"/console/incidents/{big}/acknowledge", data={"csrf": token})
    assert late.status == 409
    assert await storage.query(f"SELECT status FROM incidents WHERE id = {big}") == [  # noqa: S608
        {"status": "resolved"}
    ]
    # resolved recently: still on the Now page, as resolved
    now = await text(console, "/console/")
    assert '<span class="chip state resolved"' in incident_block(now, big)
    assert "1 resolved in the last hour" in now


async def test_incident_page_merges_its_timeline_and_lists_its_alerts(console):
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    token = await login(console, "responder")
    # an alert-level action shows on the incident's timeline too
    pay1 = await alert_path(console, "pay1")
    console.clock.advance(60)
    await console.post(f"{pay1}/acknowledge", data={"csrf": token, "note": "mine"})
    console.clock.advance(60)
    await console.post(f"/console/incidents/{big}/acknowledge", data={"csrf": token})
    html = await text(console, f"/console/incidents/{big}")
    assert "DatabaseErrorsHigh and 3 related alerts across 3 organizations" in html
    assert "Probable cause: <b>DatabaseErrorsHigh</b>" in html
    for org in ORGS:
        assert f'href="/console/history?org={org}">{org}</a>' in html
    for fp in ("pay0", "pay1", "pay2", "db1"):
        assert f'href="{await alert_path(console, fp)}"' in html
    assert '<span class="chip cause">probable cause</span>' in html
    timeline = html[html.index("<h2>Timeline</h2>") :]
    lines = re.findall(
        r'<td class="t">([^<]+)</td><td class="what">([^<]+)</td><td>([^<]*)', timeline
    )
    whats = [w for _, w, _ in lines]
    # oldest first, like an alert's page
    assert [t for t, _, _ in lines] == sorted(t for t, _, _ in lines)
    assert whats[0] in ("opened", "fired")
    assert "opened" in whats
    assert "paged" in whats  # the incident's first page
    assert "severity raised" in whats  # the critical database alert joined
    assert whats.count("fired") == 4
    assert whats.count("queued") >= 1  # its deliveries
    assert ("acknowledged", "PaymentFailureRatioHigh (org-b) by responder") in [
        (w, x.strip()) for _, w, x in lines
    ]
    incident_ack = [x for _, w, x in lines if w == "acknowledged" and "via console" in x]
    assert incident_ack == ["by responder via console, 3 alert(s)"]  # pay1 was acknowledged
    assert whats.index("opened") < whats.index("acknowledged")
    # the alert page links its incident
    alert_html = await text(console, pay1)
    assert f'Part of <a href="/console/incidents/{big}">incident #{big}: ' in alert_html
    assert "probable cause DatabaseErrorsHigh" in alert_html
    legacy = await text(console, await alert_path(console, "old1"))
    assert "Part of" not in legacy


@pytest.mark.parametrize(
    "ident", ["abc", "0", "-1", "1e3", "99999999999999999999", "9223372036854775808", "\u0661"]
)
async def test_incident_ids_that_cannot_be_one_are_404s(console, ident):
    token = await login(console, "responder")
    assert (await console.get(f"/console/incidents/{ident}")).status == 404
    posted = await console.post(f"/console/incidents/{ident}/acknowledge", data={"csrf": token})
    assert posted.status == 404


async def test_an_incident_that_does_not_exist_is_a_404(console):
    token = await login(console, "responder")
    assert (await console.get("/console/incidents/9223372036854775807")).status == 404
    missing = await console.post("/console/incidents/12345/acknowledge", data={"csrf": token})
    assert missing.status == 404


async def test_a_user_limited_to_organizations_sees_their_incidents_and_alerts_only(console):
    await outage(console)
    ids = await incident_ids(console)
    big, widget = ids["pay0"], ids["wid1"]
    storage = console.bridge.storage
    await storage.console().upsert_user("alice", PASSWORD_HASH, "responder", T0, ("org-a",))
    token = await login(console, "alice")
    html = await text(console, f"/console/?open={big}")
    block = incident_block(html, big)
    assert 'title="only org-a">org-a</a>' in block
    assert "org-b" not in block
    assert "org-c" not in block
    assert "+2 others" in block
    assert f'data-href="{await alert_path(console, "pay0")}"' in block
    for fp in ("pay1", "pay2", "db1"):  # other organizations', and the platform's
        assert await alert_path(console, fp) not in html
    assert f'id="incident-{widget}"' not in html
    assert "WidgetLoadErrorRatioHigh" not in html
    assert "LegacyAlert" in html  # org-a's, without an incident
    assert "1 firing</span> incident" in html
    assert "2 alerts firing" in html

    page = await text(console, f"/console/incidents/{big}")
    assert "2 you do not see" in page
    assert await alert_path(console, "pay1") not in page
    assert "(org-b)" not in page  # nor on the timeline
    outside = await text(console, f"/console/incidents/{widget}", 403)
    assert f"Incident #{widget} is outside your organizations." in outside
    assert "WidgetLoadErrorRatioHigh" not in outside
    for fp in ("pay1", "db1"):  # another organization's alert, and one of none
        outside = await text(console, await alert_path(console, fp), 403)
        assert "This alert is outside your organizations." in outside
    await text(console, "/console/incidents/999999", 404)
    await text(console, await alert_path(console, "pay0"))
    history = await text(console, "/console/history")
    assert "org-a" in history
    assert "org-b" not in history
    assert "WidgetLoadErrorRatioHigh" not in history
    review = await text(console, "/console/review")  # their organizations' numbers
    per_alert = review[review.index('<table class="review">') :]
    per_alert = per_alert[: per_alert.index("</table>")]
    assert "org-a" in per_alert
    assert "org-b" not in review
    assert "WidgetLoadErrorRatioHigh" not in per_alert
    settings = await text(console, "/console/settings")  # their organizations' only
    assert 'href="?org=org-a"' in settings
    assert "org-b" not in settings
    assert "outside your organizations" in await text(console, "/console/settings?org=org-b", 403)
    for action in ("acknowledge", "resolve"):
        refused = await console.post(f"/console/incidents/{widget}/{action}", data={"csrf": token})
        assert refused.status == 403
        assert "outside your organizations" in await refused.text()
    for action in ("acknowledge", "silence"):
        other = await console.post(
            f"{await alert_path(console, 'pay1')}/{action}", data={"csrf": token, "duration": "1h"}
        )
        assert other.status == 403
    assert await storage.query(f"SELECT status FROM incidents WHERE id = {widget}") == [  # noqa: S608
        {"status": "firing"}
    ]
    assert await storage.query("SELECT 1 FROM alert_acknowledgements") == []

    # acknowledging the incident: it, and the alerts of org-a only
    response = await console.post(f"/console/incidents/{big}/acknowledge", data={"csrf": token})
    assert f"incident #{big} acknowledged with 1 alert" in await response.text()
    acked = await storage.query("SELECT fingerprint FROM alert_acknowledgements")
    assert acked == [{"fingerprint": "pay0"}]
    assert await storage.query(f"SELECT status FROM incidents WHERE id = {big}") == [  # noqa: S608
        {"status": "acknowledged"}
    ]
    # an unlimited viewer sees everything (the acknowledged too, when shown: ?all=1)
    await switch_user(console, "viewer")
    everything = await text(console, f"/console/?all=1&open={big}")
    assert f'id="incident-{widget}"' in everything
    assert await alert_path(console, "pay1") in everything


async def test_an_action_on_a_merged_incident_is_checked_against_the_survivor(console):
    """Attack: a user limited to org-w presses Acknowledge or Resolve on their incident, which
    was merged into one of other organizations only: 403, nothing changes."""
    await outage(console)
    widget, survivor = await merge_widget_into_outage(console)
    storage = console.bridge.storage
    await storage.console().upsert_user("wes", PASSWORD_HASH, "responder", T0, ("org-w",))
    token = await login(console, "wes")
    await text(console, f"/console/incidents/{widget}")  # their own incident stays readable
    for action in ("acknowledge", "resolve"):
        response = await console.post(f"/console/incidents/{widget}/{action}", data={"csrf": token})
        assert response.status == 403
        assert (
            f"Incident #{widget} was merged into incident #{survivor}, which is outside your"
            " organizations." in await response.text()
        )
    sql = f"SELECT status FROM incidents WHERE id = {survivor}"  # noqa: S608
    assert await storage.query(sql) == [{"status": "firing"}]
    assert await storage.query("SELECT 1 FROM alert_acknowledgements") == []


class _Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_user_add_limits_a_user_to_organizations(db_url, capsys):
    config = make_config(db_url)
    args = argparse.Namespace(name="dora", role="viewer", organizations="org-a, org-b,org-a")
    assert cmd_user(args, config, _Stdin("a long enough secret\n")) == 0
    assert "dora saved with role viewer, limited to org-a, org-b" in capsys.readouterr().out
    admin = argparse.Namespace(name="eve", role="admin", organizations="org-a")
    assert cmd_user(admin, config, _Stdin("a long enough secret\n")) == 0  # organization admin
    assert "eve saved with role admin, limited to org-a" in capsys.readouterr().out
    bad = argparse.Namespace(name="fred", role="viewer", organizations="org a")
    assert cmd_user(bad, config, _Stdin("a long enough secret\n")) == 2
    everyone = argparse.Namespace(name="gil", role="viewer", organizations="")
    assert cmd_user(everyone, config, _Stdin("a long enough secret\n")) == 0

    async def stored(name: str):
        async with open_storage(db_url) as storage:
            return await storage.console().get_user(name)

    assert asyncio.run(stored("dora")).organizations == ("org-a", "org-b")
    assert asyncio.run(stored("gil")).organizations is None
    assert asyncio.run(stored("eve")).organizations == ("org-a",)


async def test_the_users_page_limits_a_user_to_organizations(console):
    token = await login(console, "admin")
    saved = await console.post(
        "/console/users",
        data={
            "csrf": token,
            "username": "hank",
            "role": "viewer",
            "organizations": "org-x",
            "password": "a long enough secret",
        },
    )
    assert "hank saved as viewer for org-x" in await saved.text()
    user = await console.bridge.storage.console().get_user("hank")
    assert user.organizations == ("org-x",)
    saved = await console.post(
        "/console/users",
        data={
            "csrf": token,
            "username": "ivy",
            "role": "admin",
            "organizations": "org-x",
            "password": "a long enough secret",
        },
    )
    assert "ivy saved as admin for org-x" in await saved.text()  # an organization admin
    user = await console.bridge.storage.console().get_user("ivy")
    assert (user.role, user.organizations) == ("admin", ("org-x",))


async def test_beside_the_bridges_incident_actions_the_store_acknowledges_only_the_alerts(console):
    # with the bridge's IncidentActions (ConsoleHost.incident_actions), they set the incident's
    # status and timeline; the console's query acknowledges its alerts and audits
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    storage = console.bridge.storage
    entry = AuditEntry(console.clock(), "responder", "acknowledged incident", detail={"x": 1})
    store = storage.console()
    done = await store.acknowledge_incident(big, ("org-a", "org-b"), "", entry, set_status=False)
    assert done == IncidentAck("firing", False, 2)
    assert await storage.query(f"SELECT status FROM incidents WHERE id = {big}") == [  # noqa: S608
        {"status": "firing"}
    ]
    assert await count(storage, "incident_events", "WHERE kind = 'acknowledged'") == 0
    acked = await storage.query("SELECT fingerprint FROM alert_acknowledgements ORDER BY 1")
    assert acked == [{"fingerprint": "pay0"}, {"fingerprint": "pay1"}]
    assert await count(storage, "console_audit") == 3
    again = await store.acknowledge_incident(big, None, "", entry, set_status=False)
    assert again == IncidentAck("firing", False, 2)  # pay2 and db1
    assert await count(storage, "console_audit") == 6
