"""An incident's escalation on its console page: the policy's steps with who each one reached
and how, where the walk stands (the next step due, acknowledged until, done), the answers (who
acknowledged or resolved, and how), and resolving from the page through the bridge's incident
actions; on the bridge process's app with an on-call file, its escalator driven by hand."""

from __future__ import annotations

import html
from datetime import timedelta

from tests.console.oncall_support import NOW
from tests.console.support import fire, login, switch_user


async def incident_page(client, ident: int) -> str:
    response = await client.get(f"/console/incidents/{ident}")
    assert response.status == 200, await response.text()
    text = html.unescape(await response.text())
    return text


def escalation(text: str) -> str:
    start = text.index('id="escalation"')
    return " ".join(text[start : text.index("<h2>Alerts</h2>", start)].split())


async def test_the_incident_page_shows_the_escalation_its_answers_and_resolves(oncall_console):
    client = oncall_console
    await fire(
        client,
        name="DatabaseErrorsHigh",
        fingerprint="db1",
        category="system",
        organization_id=None,
        severity="critical",
        starts_at=NOW,
    )
    rows = await client.bridge.storage.query("SELECT id FROM incidents")
    ident = rows[0]["id"]
    csrf = await login(client, "responder")
    shown = escalation(await incident_page(client, ident))
    assert "Policy <b>default</b>" in shown
    assert "escalating</span> step 1 of 2 due at 2026-10-21 10:00:00 UTC" in shown
    assert 'class=" due">at once: schedule:primary by sms, slack' in shown
    assert "No answer yet." in shown

    # step 1 goes out: whom it reached and how; step 2 is due a minute later
    assert await client.bridge.escalator.run_once() == 1
    shown = escalation(await incident_page(client, ident))
    assert "2026-10-21 10:00:00</span> alice by sms, alice by slack" in shown
    assert "step 2 of 2 due at 2026-10-21 10:01:00 UTC" in shown
    assert 'class=" due">after 1m00s: person:bob by sms' in shown

    client.clock.advance(20)
    response = await client.post(
        f"/console/incidents/{ident}/acknowledge", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303
    text = await incident_page(client, ident)
    shown = escalation(text)
    # the policy's ack_timeout: 30 minutes, then the walk starts again
    assert "acknowledged</span> until 2026-10-21 10:30:20 UTC (in 30m)" in shown
    assert "10:00:20</span> <b>acknowledged</b> by <b>responder</b> via console" in shown
    assert "Resolve incident" in text

    viewer = await switch_user(client, "viewer")
    assert "Resolve incident" not in await incident_page(client, ident)
    response = await client.post(
        f"/console/incidents/{ident}/resolve", data={"csrf": viewer}, allow_redirects=False
    )
    assert response.status == 403
    assert (await client.bridge.storage.query("SELECT status FROM incidents"))[0][
        "status"
    ] == "acknowledged"

    csrf = await switch_user(client, "responder")
    client.clock.advance(40)
    response = await client.post(
        f"/console/incidents/{ident}/resolve", data={"csrf": csrf}, allow_redirects=False
    )
    assert response.status == 303
    assert "resolved" in response.headers["Location"]
    text = await incident_page(client, ident)
    shown = escalation(text)
    assert "done</span> the incident resolved" in shown
    assert "10:01:00</span> <b>resolved</b> by <b>responder</b> via console" in shown
    assert "Resolve incident" not in text
    row = (await client.bridge.storage.query("SELECT status, resolved_at FROM incidents"))[0]
    assert row["status"] == "resolved"
    assert row["resolved_at"] == NOW + timedelta(seconds=60)
    entries = await client.bridge.storage.console().recent_audit(10)
    assert [e.detail for e in entries if e.action == "resolved incident"] == [{"incident": ident}]
    # again: nothing changes, nothing more is written
    response = await client.post(
        f"/console/incidents/{ident}/resolve", data={"csrf": csrf}, allow_redirects=False
    )
    assert "already+resolved" in response.headers["Location"]
    entries = await client.bridge.storage.console().recent_audit(10)
    assert sum(1 for e in entries if e.action == "resolved incident") == 1


async def test_an_incident_no_route_sends_to_a_policy_shows_no_escalation(oncall_console):
    await fire(oncall_console, fingerprint="low1", severity="low", starts_at=NOW)
    ident = (await oncall_console.bridge.storage.query("SELECT id FROM incidents"))[0]["id"]
    await login(oncall_console, "responder")
    text = await incident_page(oncall_console, ident)
    assert 'id="escalation"' not in text
    assert "Resolve incident" in text
