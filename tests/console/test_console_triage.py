"""Triage on the Now page: the matcher filter (in SQL; bad input a 400 naming the problem; a
user limited to organizations never sees more through it), the acknowledged, silenced and
inhibited hidden by default and counted, every severity's count, collapsing by alert name, the
organization link, saved views, and bulk acknowledge and silence of a selection.

The incidents are made by the bridge's own ingest (``outage``: one incident of PaymentFailure-
RatioHigh in org-a, org-b, org-c with DatabaseErrorsHigh, critical, as its cause; a widget
incident in org-w; LegacyAlert in org-a without an incident), on PostgreSQL, with the real
Alertmanager of the package for silences."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from bridge.storage.console_now import MAX_VIEWS
from passiton_common.http_client import async_client
from tests.bridge.support import T0, count
from tests.console.support import (
    PASSWORD_HASH,
    alert_path,
    csrf_of,
    incident_ids,
    login,
    merge_widget_into_outage,
    outage,
    switch_user,
)
from tests.console.test_console_incidents import incident_block
from tests.console.test_console_incidents import text as plain_text

# every incident open (the page carries the alert rows of open incidents only)
OPEN = "".join(f"&open={n}" for n in range(1, 11))


async def text(console, path: str, status: int = 200) -> str:
    joined = path + ("" if "?" in path else "?") + OPEN
    return await plain_text(console, joined, status)


def q(filter_text: str, **extra: str) -> str:
    more = "".join(f"&{k}={v}" for k, v in extra.items())
    return f"/console/?q={quote(filter_text)}{more}"


def shown_alerts(html: str) -> set[str]:
    """The alert pages the Now page links rows to."""
    return set(re.findall(r'data-href="(/console/alerts/[a-z_]+/\d+)"', html))


async def paths(console, *fingerprints: str) -> set[str]:
    return {await alert_path(console, f) for f in fingerprints}


async def test_the_filter_takes_alertmanager_matchers_and_shows_the_matching_alerts(console):
    await outage(console)
    ids = await incident_ids(console)
    big, widget = ids["pay0"], ids["wid1"]
    await login(console, "viewer")
    everything = await text(console, "/console/")
    assert shown_alerts(everything) == await paths(
        console, "pay0", "pay1", "pay2", "db1", "wid1", "old1"
    )
    # every severity's count on the first screen, each a link to its filter
    summary = everything[everything.index("summary-line") :]
    for severity, n in (("critical", 1), ("high", 4), ("medium", 1), ("low", 0)):
        assert f'title="only {severity}">{severity} <b>{n}</b></a>' in summary
    assert 'href="?q=severity%3D%22critical%22"' in summary

    critical = await text(console, q('severity="critical"'))
    assert shown_alerts(critical) == await paths(console, "db1")
    assert f'id="incident-{big}"' in critical  # an incident shows when any alert matches
    assert f'id="incident-{widget}"' not in critical
    assert 'value="severity=&#34;critical&#34;"' in critical  # kept in the filter bar

    several = q('category=~"payment|widget" organization_id!="org-b"')
    assert shown_alerts(await text(console, several)) == await paths(
        console, "pay0", "pay2", "wid1", "old1"
    )
    # regular expressions are anchored, like Alertmanager's; (?i) as RE2 takes it
    assert shown_alerts(await text(console, q('alertname=~"Payment"'))) == set()
    assert "Nothing matches the filter" in await text(console, q('alertname=~"Payment"'))
    anycase = await text(console, q('alertname=~"(?i)widget.*"'))
    assert shown_alerts(anycase) == await paths(console, "wid1")
    # any label, a missing one as ""; braces and commas as in Alertmanager
    assert shown_alerts(await text(console, q('{team="", severity!~"high|critical"}'))) == (
        await paths(console, "wid1")
    )
    assert shown_alerts(await text(console, q('no_such_label="x"'))) == set()


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        ("severity", "expected =, !=, =~ or !~ after the label name"),
        ('severity="critical', "unterminated quoted string"),
        ('alertname=~"("', "invalid regular expression"),
        ('alertname=~"(?P<n>Pay.*)"', "invalid regular expression"),  # Python's, not PostgreSQL's
        ('alertname=~"(a)\\\\1"', "back-references are not supported"),
        ('alertname=~"(?=P)P.*"', "look-ahead or look-behind are not supported"),
        ('alertname=~"' + "a" * 300 + '"', "over 256 characters"),
        ("@state=snoozed", "unknown state 'snoozed'"),
        ('@owner="me"', "unknown name '@owner'"),
        (" ".join(f'a{i}="x"' for i in range(21)), "at most 20 matchers"),
    ],
)
async def test_a_bad_filter_is_a_400_that_names_the_problem(console, typed, named):
    await outage(console)
    await login(console, "viewer")
    for path in (q(typed), q(typed, fragment="1")):
        response = await console.get(path)
        assert response.status == 400, path
        html = await response.text()
        assert "Filter not applied: " in html
        assert named.replace("'", "&#39;") in html
        assert 'id="live"' in html
        assert shown_alerts(html) == set()
    page = await (await console.get(q(typed))).text()
    assert 'aria-invalid="true"' in page  # the text stays in the bar, to be corrected


async def test_a_user_limited_to_organizations_sees_no_more_through_a_filter(console):
    await outage(console)
    await console.bridge.storage.console().upsert_user(
        "alice", PASSWORD_HASH, "responder", T0, ("org-a",)
    )
    await login(console, "alice")
    mine = await paths(console, "pay0", "old1")
    assert shown_alerts(await text(console, "/console/?all=1")) == mine
    for typed in (
        'organization_id="org-b"',
        'organization_id!="org-a"',
        'organization_id=~".*"',
        'organization_id=""',
        'severity="critical"',
        "@state=~.+",
    ):
        html = await text(console, q(typed, all="1"))
        assert shown_alerts(html) <= mine, typed
        live = html[html.index('id="live"') :]
        assert ">org-b<" not in live, typed
        assert ">org-w<" not in live, typed
    assert shown_alerts(await text(console, q("@state=~.+"))) == mine


async def test_acknowledged_silenced_and_inhibited_are_hidden_and_counted(console):
    await outage(console)
    storage = console.bridge.storage
    token = await login(console, "responder")
    pay0 = await alert_path(console, "pay0")
    await console.post(f"{pay0}/acknowledge", data={"csrf": token})
    # what the reconciler wrote of Alertmanager's view: pay1 silenced, pay2 inhibited
    await storage.execute(
        "INSERT INTO alert_suppression (fingerprint, starts_at, alert_table, silenced_by,"
        " inhibited_by, seen_at) SELECT fingerprint, starts_at, 'payment_alerts',"
        """ CASE fingerprint WHEN 'pay1' THEN '[{"id": "s-1"}]'::jsonb ELSE '[]' END,"""
        """ CASE fingerprint WHEN 'pay2' THEN '[{"alertname": "DatabaseErrorsHigh"}]'::jsonb"""
        " ELSE '[]' END, now() FROM payment_alerts WHERE fingerprint IN ('pay1', 'pay2')"
    )
    html = await text(console, "/console/")
    assert shown_alerts(html) == await paths(console, "db1", "wid1", "old1")
    assert ">3 hidden</a>" in html
    assert "(1 acknowledged, 1 silenced, 1 inhibited)" in html
    assert 'title="only high">high <b>1</b></a>' in html  # the shown: old1
    assert 'data-toggle-key="h" aria-pressed="false"' in html
    shown = await text(console, "/console/?all=1")
    assert shown_alerts(shown) == await paths(
        console, "pay0", "pay1", "pay2", "db1", "wid1", "old1"
    )
    assert "hidden</a>" not in shown
    assert 'data-toggle-key="h" aria-pressed="true"' in shown
    # an @state matcher says itself what shows
    assert shown_alerts(await text(console, q("@state=acknowledged|inhibited"))) == await paths(
        console, "pay0", "pay2"
    )
    assert shown_alerts(await text(console, q("@state=silenced"))) == await paths(console, "pay1")
    assert shown_alerts(await text(console, q("@state!=active"))) == await paths(
        console, "pay0", "pay1", "pay2"
    )
    assert shown_alerts(await text(console, q('@state=~"act.*"'))) == await paths(
        console, "db1", "wid1", "old1"
    )
    # an incident acknowledged as a whole (say by SMS) hides its alerts
    widget = (await incident_ids(console))["wid1"]
    await console.post(f"/console/incidents/{widget}/acknowledge", data={"csrf": token})
    assert f'id="incident-{widget}"' not in await text(console, "/console/")


async def test_collapse_by_alert_name_and_the_organization_link(console):
    await outage(console)
    await login(console, "viewer")
    html = await text(console, "/console/?group=name&open=PaymentFailureRatioHigh")
    heads = re.findall(r'<tr class="head" data-key="g:([A-Za-z]+)"', html)
    assert heads == [
        "DatabaseErrorsHigh",  # critical first
        "PaymentFailureRatioHigh",  # then the largest
        "LegacyAlert",
        "WidgetLoadErrorRatioHigh",
    ]
    block = html[html.index('data-key="g:PaymentFailureRatioHigh"') :]
    block = block[: block.index("</tbody>")]
    assert '<td class="n">3</td>' in block
    assert "high <b>3</b>" in block
    assert "3 organizations" in block
    assert len(re.findall(r'<tr class="member', block)) == 3
    big = (await incident_ids(console))["pay0"]
    assert f'href="/console/incidents/{big}"' in block  # each alert's incident
    assert 'aria-pressed="true"' in html  # the toggle (c) shows it is on
    # one click on an organization filters to it (keeping the collapse)
    link = 'href="?q=organization_id%3D%22org-b%22&amp;group=name"'
    assert link in html
    only_b = await text(
        console, "/console/?q=organization_id%3D%22org-b%22&group=name&open=PaymentFailureRatioHigh"
    )
    assert shown_alerts(only_b) == await paths(console, "pay1")
    # on the incidents too; a second organization replaces the first
    page = await text(console, q('organization_id="org-b" severity="high"'))
    assert 'href="?q=severity%3D%22high%22+organization_id%3D%22org-b%22"' in page
    refined = incident_block(page, big)
    assert 'title="only org-b">org-b</a>' in refined


async def test_saved_views_per_user(console):
    await outage(console)
    storage = console.bridge.storage
    token = await login(console, "viewer")
    saved = await console.post(
        "/console/views",
        data={"csrf": token, "name": "  payments  critical ", "q": 'category="payment"'},
    )
    assert saved.status == 200
    assert str(saved.url.path_qs).startswith("/console/?q=category")
    page = await saved.text()
    assert "view “payments critical” saved" in page
    link = 'href="/console/?q=category%3D%22payment%22" title="category=&#34;payment&#34;">'
    assert f"{link}payments critical</a>" in page
    assert shown_alerts(await text(console, str(saved.url.path_qs))) == await paths(
        console, "pay0", "pay1", "pay2", "old1"
    )
    # the same name replaces it
    await console.post(
        "/console/views", data={"csrf": token, "name": "payments critical", "q": 'severity="x"'}
    )
    rows = await storage.query("SELECT username, name, query FROM console_saved_views")
    assert rows == [{"username": "viewer", "name": "payments critical", "query": 'severity="x"'}]
    for data, status, named in (
        ({"name": "x", "q": "severity"}, 400, "expected =, !=, =~ or !~"),
        ({"name": "x", "q": ""}, 400, "needs a filter"),
        ({"name": " ", "q": 'a="b"'}, 400, "a name of 1 to 64"),
        ({"name": "n" * 65, "q": 'a="b"'}, 400, "a name of 1 to 64"),
    ):
        refused = await console.post("/console/views", data={"csrf": token, **data})
        assert refused.status == status
        assert named in await refused.text()
    forged = await console.post("/console/views", data={"csrf": "0" * 64, "name": "y", "q": "a=b"})
    assert forged.status == 403
    assert await count(storage, "console_saved_views") == 1
    view_id = (await storage.query("SELECT id FROM console_saved_views"))[0]["id"]

    # another user neither sees nor deletes it
    other = await switch_user(console, "responder")
    assert "payments critical" not in await text(console, "/console/")
    gone = await console.post(f"/console/views/{view_id}/delete", data={"csrf": other})
    assert gone.status == 404
    insert = (
        "INSERT INTO console_saved_views (username, name, query, created_at)"
        """ SELECT 'responder', 'v' || n, 'a="b"', now() FROM generate_series(1, {}) AS n"""
    )
    await storage.execute(insert.format(MAX_VIEWS))
    full = await console.post(
        "/console/views", data={"csrf": other, "name": "one more", "q": "a=b"}
    )
    assert full.status == 409
    token = await switch_user(console, "viewer")
    deleted = await console.post(f"/console/views/{view_id}/delete", data={"csrf": token})
    assert "view deleted" in await deleted.text()
    assert await count(storage, "console_saved_views", "WHERE username = 'viewer'") == 0


async def test_bulk_acknowledge_checks_every_item_first(console):
    await outage(console)
    storage = console.bridge.storage
    ids = await incident_ids(console)
    widget = ids["wid1"]
    old1 = (await alert_path(console, "old1")).removeprefix("/console/alerts/").replace("/", ":")
    token = await login(console, "viewer")
    page = await text(console, "/console/")
    # a viewer selects nothing
    assert '<form id="bulk"' not in page
    assert 'class="pick" name="item"' not in page
    refused = await console.post(
        "/console/bulk", data={"csrf": token, "action": "acknowledge", "item": f"incident:{widget}"}
    )
    assert refused.status == 403

    token = await switch_user(console, "responder")
    page = await text(console, "/console/")
    assert f'value="incident:{widget}" form="bulk"' in page
    assert f'value="alert:{old1}" form="bulk"' in page
    for items, status, named in (
        ([], 400, "Nothing is selected"),
        (["incident:abc"], 400, "not an item: &#39;incident:abc&#39;"),
        (["alert:users:1"], 400, "not an item"),
        ([f"incident:{widget}", "incident:99999"], 404, "incident #99999"),
        ([f"alert:{old1}", "alert:payment_alerts:99999"], 404, "alert payment_alerts/99999"),
    ):
        data = [("csrf", token), ("action", "acknowledge"), *(("item", i) for i in items)]
        response = await console.post("/console/bulk", data=data)
        assert response.status == status, items
        assert named in await response.text()
    bad = await console.post(
        "/console/bulk", data={"csrf": token, "action": "resolve", "item": f"incident:{widget}"}
    )
    assert bad.status == 400
    assert await count(storage, "alert_acknowledgements") == 0  # nothing half done

    data = [
        ("csrf", token),
        ("action", "acknowledge"),
        ("q", 'severity!="critical"'),
        ("item", f"incident:{widget}"),
        ("item", f"alert:{old1}"),
    ]
    done = await console.post("/console/bulk", data=data)
    assert done.status == 200
    assert done.url.path == "/console/"
    assert done.url.query["q"] == 'severity!="critical"'
    assert "acknowledged: 2 of 2 selected" in await done.text()
    acked = await storage.query("SELECT fingerprint FROM alert_acknowledgements ORDER BY 1")
    assert acked == [{"fingerprint": "old1"}, {"fingerprint": "wid1"}]
    status = await storage.query(f"SELECT status FROM incidents WHERE id = {widget}")  # noqa: S608
    assert status == [{"status": "acknowledged"}]  # through the bridge's incident actions
    events = await storage.query(
        f"SELECT detail FROM incident_events WHERE incident_id = {widget}"  # noqa: S608
        " AND kind = 'acknowledged'"
    )
    assert '"via": "console"' in events[0]["detail"]
    again = await console.post("/console/bulk", data=data)
    assert "acknowledged: 0 of 2 selected (2 already done or resolved)" in await again.text()


async def test_bulk_respects_organization_scopes(console):
    await outage(console)
    storage = console.bridge.storage
    ids = await incident_ids(console)
    big, widget = ids["pay0"], ids["wid1"]
    pay1 = (await alert_path(console, "pay1")).removeprefix("/console/alerts/").replace("/", ":")
    await storage.console().upsert_user("alice", PASSWORD_HASH, "responder", T0, ("org-a",))
    token = await login(console, "alice")
    for item in (f"incident:{widget}", f"alert:{pay1}"):
        data = {"csrf": token, "action": "acknowledge", "item": [item, f"incident:{big}"]}
        refused = await console.post("/console/bulk", data=data)
        assert refused.status == 403
        assert "Outside your organizations (nothing was done)" in await refused.text()
    assert await count(storage, "alert_acknowledgements") == 0
    data = {"csrf": token, "action": "acknowledge", "item": f"incident:{big}"}
    assert "acknowledged: 1 of 1" in await (await console.post("/console/bulk", data=data)).text()
    acked = await storage.query("SELECT fingerprint FROM alert_acknowledgements")
    assert acked == [{"fingerprint": "pay0"}]  # org-a's only

    # silencing her part of the incident: a silence per alert of hers, not the incident's own
    console.clock.now = datetime.now(UTC)  # Alertmanager refuses silences ending in the past
    data = {"csrf": token, "action": "silence", "duration": "30m", "item": f"incident:{big}"}
    silenced = await console.post("/console/bulk", data=data)
    assert "silenced for 30m: 1 of 1 selected" in await silenced.text()
    mine = await _silences(console, "alice")
    assert len(mine) == 1
    matchers = {m["name"]: m["value"] for m in mine[0]["matchers"]}
    assert matchers["organization_id"] == "org-a"


async def test_bulk_refuses_a_merged_incident_whose_survivor_is_outside_the_scope(console):
    await outage(console)
    storage = console.bridge.storage
    widget, survivor = await merge_widget_into_outage(console)
    await storage.console().upsert_user("wes", PASSWORD_HASH, "responder", T0, ("org-w",))
    token = await login(console, "wes")
    data = {"csrf": token, "action": "acknowledge", "item": f"incident:{widget}"}
    refused = await console.post("/console/bulk", data=data)
    assert refused.status == 403
    assert f"incident #{widget} (merged into #{survivor})" in await refused.text()
    assert await count(storage, "alert_acknowledgements") == 0
    sql = f"SELECT status FROM incidents WHERE id = {survivor}"  # noqa: S608
    assert await storage.query(sql) == [{"status": "firing"}]


async def _silences(console, by: str) -> list[dict]:
    async with async_client() as http:
        found = (await http.get(f"{console.alertmanager}/api/v2/silences")).json()
    return [s for s in found if s["createdBy"] == by and s["status"]["state"] == "active"]


async def test_bulk_silence_of_incidents_and_alerts(console):
    await outage(console)
    storage = console.bridge.storage
    widget = (await incident_ids(console))["wid1"]
    old1 = (await alert_path(console, "old1")).removeprefix("/console/alerts/").replace("/", ":")
    await storage.console().upsert_user("sam", PASSWORD_HASH, "responder", T0)
    token = await login(console, "sam")
    console.clock.now = datetime.now(UTC)
    refused = await console.post(
        "/console/bulk",
        data={"csrf": token, "action": "silence", "duration": "5y", "item": f"alert:{old1}"},
    )
    assert refused.status == 400
    assert "duration must be one of" in await refused.text()
    data = [
        ("csrf", token),
        ("action", "silence"),
        ("duration", "4h"),
        ("item", f"incident:{widget}"),
        ("item", f"alert:{old1}"),
    ]
    done = await console.post("/console/bulk", data=data)
    assert "silenced for 4h: 2 of 2 selected" in await done.text()
    silences = await _silences(console, "sam")
    assert len(silences) == 2
    names = sorted(
        next(m["value"] for m in s["matchers"] if m["name"] == "alertname") for s in silences
    )
    assert names == ["LegacyAlert", "WidgetLoadErrorRatioHigh"]
    # the incident's through the bridge's incident actions: one silence, on its timeline
    events = await storage.query(
        f"SELECT kind FROM incident_events WHERE incident_id = {widget} ORDER BY id"  # noqa: S608
    )
    assert {"silenced", "acknowledged"} <= {e["kind"] for e in events}
    audit = await storage.query("SELECT action FROM console_audit WHERE username = 'sam'")
    assert {"silenced", "silenced incident"} <= {a["action"] for a in audit}
    assert csrf_of(await done.text())


async def test_past_a_few_hundred_rows_only_open_incidents_carry_their_alerts(console, monkeypatch):
    # (PRELOADED rows: 200; here 0) the script fetches the page with ?open= when one opens
    monkeypatch.setattr("console.now.PRELOADED", 0)
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    await login(console, "viewer")
    closed = incident_block(await plain_text(console, "/console/"), big)
    assert '<tr class="member' not in closed
    assert 'data-loaded="0"' in closed
    opened = incident_block(await plain_text(console, f"/console/?open={big}"), big)
    assert 'data-loaded="1"' in opened
    assert opened.count('<tr class="member') == 4
    monkeypatch.setattr("console.now.MAX_MEMBERS", 3)
    capped = incident_block(await plain_text(console, f"/console/?open={big}"), big)
    assert capped.count('<tr class="member"') == 4  # three alerts and the line naming the rest
    assert f'and 1 more: <a href="/console/incidents/{big}">the incident</a>' in capped


async def test_snoozed_incidents_are_hidden_like_the_acknowledged(console):
    await outage(console)
    widget = (await incident_ids(console))["wid1"]
    token = await login(console, "responder")
    snoozed = await console.post(
        f"/console/incidents/{widget}/snooze", data={"csrf": token, "duration": "1h"}
    )
    assert snoozed.status == 200
    page = await text(console, q('category=~"widget|payment"'))
    assert f'id="incident-{widget}"' not in page
    link = 'href="?q=category%3D~%22widget%7Cpayment%22&amp;snoozed=1"'
    assert f"{link} " in page
    assert ">1 snoozed</a>" in page
    for shown in (q('category=~"widget|payment"', snoozed="1"), "/console/?all=1"):
        assert f'id="incident-{widget}"' in await text(console, shown)
