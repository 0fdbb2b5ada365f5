"""Alert work on the console over HTTP (issue 21): acknowledging for a chosen time,
unacknowledging, snoozing, assigning, notes on incidents and alerts, and why an alert was not
delivered on each channel; roles, organization scopes, CSRF, bad input, repeats.

The incidents come from the bridge's own ingest (``outage``) in the bridge process's app on
PostgreSQL; the timers run out on the test's clock through the bridge's escalator."""

from __future__ import annotations

import re
from datetime import timedelta

from bridge.storage.console import AuditEntry
from bridge.storage.types import PreferenceRow
from tests.bridge.support import T0
from tests.console.support import (
    PASSWORD_HASH,
    alert_path,
    incident_ids,
    login,
    outage,
    switch_user,
)
from tests.console.test_console_incidents import incident_block, text


async def post(console, path: str, csrf: str, **form: str):
    return await console.post(path, data={"csrf": csrf, **form}, allow_redirects=False)


async def kinds(console, incident: int) -> list[str]:
    return [e.kind for e in await console.bridge.storage.console().incident_events(incident)]


async def test_acknowledge_for_an_hour_unacknowledge_and_their_repeats(console):
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    csrf = await login(console, "responder")
    base = f"/console/incidents/{big}"
    bad = await post(console, f"{base}/acknowledge", csrf, **{"for": "2h"})
    assert bad.status == 400
    assert "for must be one of policy, 30m, 1h, 4h, resolved" in await bad.text()
    done = await post(console, f"{base}/acknowledge", csrf, **{"for": "1h"})
    assert done.status == 303
    page = await text(console, base)
    assert "acknowledged until 2026-03-01 10:00:30 UTC" in page
    assert "Unacknowledge</button>" in page

    done = await post(console, f"{base}/unacknowledge", csrf)
    assert "unacknowledged" in done.headers["Location"]
    again = await post(console, f"{base}/unacknowledge", csrf)
    assert "not+acknowledged" in again.headers["Location"]
    assert (await kinds(console, big)).count("unacknowledged") == 1
    page = await text(console, base)
    assert '<span class="chip state firing">firing</span>' in page
    # it was paged on PagerDuty, which has no un-acknowledge: the timeline says so
    assert "not on PagerDuty, which has no un-acknowledge" in page
    # its alerts' acknowledgements went with it: their repeats notify again
    assert await console.bridge.storage.query("SELECT * FROM alert_acknowledgements") == []

    # acknowledged again for 30 minutes: the bridge's clock runs it out, once
    await post(console, f"{base}/acknowledge", csrf, **{"for": "30m"})
    console.clock.advance(30 * 60)
    assert await console.bridge.escalator.run_once() == 1
    assert await console.bridge.escalator.run_once() == 0
    page = await text(console, base)
    assert "the chosen time ran out: firing again" in page
    assert (await kinds(console, big)).count("acknowledgement_expired") == 1
    # the alert acknowledgements of that acknowledgement ended with it
    alert = await text(console, await alert_path(console, "pay0"))
    assert "Acknowledged by" not in alert


async def test_snooze_hides_the_incident_until_it_ends(console):
    await outage(console)
    ids = await incident_ids(console)
    big, widget = ids["pay0"], ids["wid1"]
    csrf = await login(console, "responder")
    bad = await post(console, f"/console/incidents/{big}/snooze", csrf, duration="0m")
    assert bad.status == 400
    done = await post(console, f"/console/incidents/{big}/snooze", csrf, duration="1h")
    assert done.status == 303
    again = await post(console, f"/console/incidents/{big}/snooze", csrf, duration="1h")
    assert "already+snoozed" in again.headers["Location"]
    home = await text(console, "/console/")
    assert f'id="incident-{big}"' not in home
    assert f'id="incident-{widget}"' in home
    assert '<a href="?snoozed=1"' in home
    assert "1 snoozed</a>" in home
    shown = await text(console, "/console/?snoozed=1")
    assert "snoozed until 10:00" in incident_block(shown, big)
    page = await text(console, f"/console/incidents/{big}")
    assert "snoozed until 2026-03-01 10:00:30 UTC by responder" in page
    assert "A <b>silence</b> is Alertmanager's" in page  # how it differs, said where it is
    assert '<span class="chip state firing">firing</span>' in page  # not acknowledged

    console.clock.advance(3600)
    assert await console.bridge.escalator.run_once() == 1
    assert f'id="incident-{big}"' in await text(console, "/console/")
    assert (await kinds(console, big)).count("snooze_ended") == 1
    # ending a snooze by hand, and snoozing a resolved incident
    await post(console, f"/console/incidents/{widget}/snooze", csrf, duration="4h")
    await post(console, f"/console/incidents/{widget}/unsnooze", csrf)
    assert f'id="incident-{widget}"' in await text(console, "/console/")
    await post(console, f"/console/incidents/{widget}/resolve", csrf)
    refused = await post(console, f"/console/incidents/{widget}/snooze", csrf, duration="1h")
    assert refused.status == 409


async def test_assign_to_yourself_or_a_user_who_can_see_it(console):
    await outage(console)
    ids = await incident_ids(console)
    big = ids["pay0"]
    store = console.bridge.storage.console()
    await store.upsert_user("widgets", PASSWORD_HASH, "responder", T0, ("org-w",))
    csrf = await login(console, "responder")
    base = f"/console/incidents/{big}"
    page = await text(console, base)
    assert "<option>admin</option>" in page
    assert "<option>widgets</option>" not in page
    assert (await post(console, f"{base}/assign", csrf, assignee="me")).status == 303
    again = await post(console, f"{base}/assign", csrf, assignee="me")
    assert "already+assigned" in again.headers["Location"]
    assert "responder" in incident_block(await text(console, "/console/"), big)
    unknown = await post(console, f"{base}/assign", csrf, assignee="nobody-here")
    assert unknown.status == 400
    assert "no console user" in await unknown.text()
    blind = await post(console, f"{base}/assign", csrf, assignee="widgets")
    assert blind.status == 400
    assert "cannot see this incident" in await blind.text()
    assert (await post(console, f"{base}/assign", csrf, assignee="admin")).status == 303
    page = await text(console, base)
    assert "assigned to admin" in page
    assert re.search(r"assigned</td><td>to admin by responder via console", page)
    assert "was responder" in page
    # the user limited to another organization cannot reach it at all, nor its alerts
    await switch_user(console, "widgets")
    csrf = await login(console, "widgets")
    refused = await post(console, f"{base}/assign", csrf, assignee="me")
    assert refused.status == 403
    assert "is outside your organizations." in await refused.text()
    other = await alert_path(console, "pay0")
    assert (await post(console, f"{other}/notes", csrf, text="x")).status == 403
    assert (await post(console, f"{other}/unacknowledge", csrf)).status == 403
    own = await alert_path(console, "wid1")
    assert (await post(console, f"{own}/notes", csrf, text="mine")).status == 303
    widget = f"/console/incidents/{ids['wid1']}"
    assert (await post(console, f"{widget}/assign", csrf, assignee="me")).status == 303
    assert "assigned to widgets" in await text(console, widget)


async def test_notes_are_escaped_capped_and_refuse_nul(console):
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    csrf = await login(console, "responder")
    base = f"/console/incidents/{big}"
    note = "<script>alert(1)</script> disk full on db-2"
    assert (await post(console, f"{base}/notes", csrf, text=note)).status == 303
    assert (
        "that+note" in (await post(console, f"{base}/notes", csrf, text=note)).headers["Location"]
    )
    page = await text(console, base)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; disk full on db-2" in page
    assert "<script>alert(1)" not in page
    assert (await kinds(console, big)).count("note") == 1
    for bad, reason in (
        ("a\x00b", "NUL"),
        ("x" * 2001, "at most 2000"),
        ("   ", "needs text"),
    ):
        response = await post(console, f"{base}/notes", csrf, text=bad)
        assert response.status == 400, bad
        assert reason in await response.text()
    # on an alert: its own timeline
    path = await alert_path(console, "pay1")
    assert (await post(console, f"{path}/notes", csrf, text="seen <b>twice</b>")).status == 303
    alert = await text(console, path)
    assert "seen &lt;b&gt;twice&lt;/b&gt;" in alert
    assert (await post(console, f"{path}/notes", csrf, text="a\x00")).status == 400


async def test_a_viewer_cannot_act_and_a_form_needs_its_csrf_token(console):
    await outage(console)
    big = (await incident_ids(console))["pay0"]
    csrf = await login(console, "viewer")
    page = await text(console, f"/console/incidents/{big}")
    assert "/snooze" not in page
    assert "/assign" not in page
    assert "/notes" not in page
    for action, form in (
        ("unacknowledge", {}),
        ("snooze", {"duration": "1h"}),
        ("unsnooze", {}),
        ("assign", {"assignee": "me"}),
        ("notes", {"text": "hi"}),
    ):
        response = await post(console, f"/console/incidents/{big}/{action}", csrf, **form)
        assert response.status == 403, action
    path = await alert_path(console, "pay0")
    assert (await post(console, f"{path}/unacknowledge", csrf)).status == 403
    assert (await post(console, f"{path}/notes", csrf, text="x")).status == 403
    await switch_user(console, "responder")
    await login(console, "responder")
    forged = await post(console, f"/console/incidents/{big}/notes", "0" * 64, text="x")
    assert forged.status == 403
    missing = await post(console, "/console/incidents/999999/notes", csrf="", text="x")
    assert missing.status == 403  # the token is checked before anything else
    assert await kinds(console, big) == [k for k in await kinds(console, big) if k != "note"]


async def test_unacknowledge_an_alert(console):
    await outage(console)
    path = await alert_path(console, "wid1")
    csrf = await login(console, "responder")
    bad = await post(console, f"{path}/acknowledge", csrf, **{"for": "policy"})
    assert bad.status == 400
    await post(console, f"{path}/acknowledge", csrf, **{"for": "4h"})
    page = await text(console, path)
    assert "Repeats to the channels stop until 2026-03-01 13:00:30 UTC" in page
    # the ingest reads it as acknowledged until then, and not after
    [row] = await console.bridge.storage.query(
        "SELECT fingerprint, starts_at FROM widget_alerts WHERE fingerprint = 'wid1'"
    )
    instance = (row["fingerprint"], row["starts_at"])
    async with console.bridge.storage.transaction() as tx:
        assert await tx.acknowledged([instance], console.clock.now) == {instance}
        later = console.clock.now + timedelta(hours=4)
        assert await tx.acknowledged([instance], later) == set()
    assert (await post(console, f"{path}/unacknowledge", csrf)).status == 303
    page = await text(console, path)
    assert "Acknowledged by" not in page
    assert "unacknowledged</td><td>by responder" in page
    again = await post(console, f"{path}/unacknowledge", csrf)
    assert "not+acknowledged" in again.headers["Location"]


async def test_the_alert_page_says_why_a_channel_was_not_delivered(console):
    store = console.bridge.storage.console()
    audit = AuditEntry(T0, "admin", "saved preferences")
    for row in (
        PreferenceRow("org-b", ["slack", "voice"], {}, "low", None, None, "UTC"),
        PreferenceRow("org-c", None, {}, "critical", None, None, "UTC"),
    ):
        await store.save_preference(row, T0, audit)
    await console.bridge.router.refresh(console.bridge.storage, force=True)
    await outage(console)
    await login(console, "viewer")

    async def lines(fingerprint: str) -> dict[str, tuple[str, str]]:
        html = await text(console, await alert_path(console, fingerprint))
        table = html[html.index('id="channels"') : html.index("<h2>Deliveries")]
        rows = re.findall(
            r'<tr class="ch-[^"]*"><td>([\w ]+)</td><td>(\w+)</td><td><span class="chip [^"]*">'
            r"([\w ]+)</span></td><td>([^<]*)</td></tr>",
            table,
        )
        return {f"{c} {e}": (state, why) for c, e, state, why in rows}

    # the first alert paged the incident on the severity's channels
    first = await lines("pay0")
    assert first["slack firing"] == ("pending", "")
    assert first["email firing"] == ("pending", "")
    # org-b's channels replace the severity's: Slack, and a voice this bridge has not got;
    # its alert joined the incident paged already: one page per incident
    joined = await lines("pay1")
    assert joined["slack firing"] == (
        "not sent",
        "its incident had been paged already (one page per incident)",
    )
    assert joined["voice firing"][1].startswith("this channel is not configured on the bridge")
    assert "email firing" not in joined
    # org-c wants critical only
    assert (await lines("pay2"))["slack firing"] == (
        "not sent",
        "below the organization&#39;s minimum severity",
    )
    # silenced in Alertmanager (as the reconciler recorded it): said for every channel
    await console.bridge.storage.execute(
        "INSERT INTO alert_suppression (fingerprint, starts_at, alert_table, silenced_by,"
        " seen_at) SELECT fingerprint, starts_at, 'payment_alerts',"
        ' \'[{"id": "s-1"}]\'::jsonb, received_at FROM payment_alerts'
        " WHERE fingerprint = 'pay0'"
    )
    muted = await lines("pay0")
    assert muted["every channel firing"] == (
        "silenced",
        "silenced (silence s-1) in Alertmanager: nothing more of it reaches the bridge while so",
    )
