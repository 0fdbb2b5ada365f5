"""The alert console's Now and alert pages: acknowledge, retry of a dead letter, silences."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests import plain_http
from tests.bridge.support import count
from tests.console.support import dead_delivery, fire, first_alert_url, login


async def test_now_page_groups_firing_alerts_with_delivery_states(console):
    await fire(console, fingerprint="c1", severity="critical", organization_id="org-crit")
    await fire(
        console,
        name="WidgetLoadErrorRatioHigh",
        fingerprint="w1",
        severity="medium",
        category="widget",
        organization_id="org-w",
    )
    await fire(console, name="Gone", fingerprint="r1", status="resolved")
    await login(console, "viewer")
    html = await (await console.get("/console/")).text()
    assert "2 firing</span> incidents" in html  # one incident each: unrelated alerts
    assert "2 alerts firing" in html
    assert html.index("critical") < html.index("medium")  # most severe group first
    assert "org-crit" in html
    assert "org-w" in html
    assert "Gone" not in html
    # critical went to slack, email, pagerduty and sms; nothing is sent yet (no workers)
    for channel in ("email", "pagerduty", "slack", "sms"):
        assert f"{channel} pending" in html
    assert "https://docs.example/runbooks#x" in html
    assert "updated" in html
    fragment = await (await console.get("/console/?fragment=1")).text()
    assert fragment.startswith('<div id="live"')
    assert "<html" not in fragment


PAIR = (("f1", "org-ack", "PaymentFailureRateHigh"), ("g1", "org-control", "ControlAlert"))


async def test_acknowledge_is_shown_and_stops_repeats_until_resolve_or_escalation(console):
    bridge = console.bridge
    storage = bridge.storage
    t0 = console.clock()

    async def deliveries(fingerprint: str) -> int:
        found = await storage.console().deliveries([fingerprint])
        return len(found)

    # f1 is acknowledged, g1 (another organization) is the control that is not; another alert
    # name, or it would join f1's incident and be paged with it, not on its own
    for fp, org, name in PAIR:
        await fire(console, name=name, fingerprint=fp, organization_id=org, starts_at=t0)
    url = await first_alert_url(console)
    token = await login(console, "responder")
    response = await console.post(
        f"{url}/acknowledge", data={"csrf": token, "note": "looking <b>now</b>"}
    )
    assert response.status == 200
    page = await response.text()
    assert "Acknowledged by <b>responder</b>" in page
    assert "looking &lt;b&gt;now&lt;/b&gt;" in page  # escaped
    assert "ack responder" in await (await console.get("/console/?all=1")).text()
    again = await console.post(f"{url}/acknowledge", data={"csrf": token})
    assert "already acknowledged" in await again.text()
    assert await count(storage, "alert_acknowledgements") == 1

    # both resolve (the resolve of an acknowledged alert is delivered) ...
    console.clock.advance(60)
    for fp, org, name in PAIR:
        await fire(
            console,
            name=name,
            fingerprint=fp,
            organization_id=org,
            starts_at=t0,
            status="resolved",
            ends_at=console.clock(),
        )
    assert await deliveries("f1") == await deliveries("g1") == 4  # 2 channels x fire, resolve
    # ... and fire again within the cooldown: held back, and Alertmanager's repeat after the
    # cooldown is the repeat the channels would hear
    console.clock.advance(60)
    t1 = console.clock()
    for fp, org, name in PAIR:
        await fire(console, name=name, fingerprint=fp, organization_id=org, starts_at=t1)
    assert await deliveries("f1") == await deliveries("g1") == 4
    html = await (await console.get("/console/")).text()
    newest_f1 = [part.rsplit('action="', 1)[1] for part in html.split('/acknowledge"')[:-1]]
    rows = await storage.query(
        "SELECT id FROM payment_alerts WHERE fingerprint = 'f1' ORDER BY id DESC LIMIT 1"
    )
    target = f"/console/alerts/payment_alerts/{rows[0]['id']}"
    assert target in newest_f1
    await console.post(f"{target}/acknowledge", data={"csrf": token})
    console.clock.advance(600)
    for fp, org, name in PAIR:
        await fire(console, name=name, fingerprint=fp, organization_id=org, starts_at=t1)
    assert await deliveries("g1") == 6  # the control is repeated to its two channels
    assert await deliveries("f1") == 4  # the acknowledged one is not
    metrics = await (await console.get("/metrics")).text()
    assert 'passiton_bridge_suppressed_total{reason="acknowledged"} 1.0' in metrics
    # it escalates: severity is a label, so the critical alert is a new instance, notified
    await fire(
        console,
        fingerprint="f2",
        organization_id="org-ack",
        severity="critical",
        starts_at=console.clock(),
    )
    assert await deliveries("f2") == 4
    # acknowledging a resolved alert is refused
    response = await console.post(f"{url}/acknowledge", data={"csrf": token})
    assert response.status == 409


async def test_alert_page_timeline_links_and_retry_of_a_dead_letter(console):
    await fire(console, fingerprint="t1", severity="high")
    url = await first_alert_url(console)
    storage = console.bridge.storage
    rows = await storage.query("SELECT id FROM alert_deliveries WHERE channel = 'email'")
    email = rows[0]["id"]
    await storage.mark_retry(email, console.clock() + timedelta(seconds=5), "SMTP 451 try later")
    await storage.mark_sent([email], console.clock())
    dead = await dead_delivery(console)
    token = await login(console, "responder")
    html = await (await console.get(url)).text()
    for text in ("failed, will retry", "SMTP 451 try later", "email, attempt 0", "sent"):
        assert text in html, text
    for text in (
        "fired",
        "received",
        "queued",
        "gave up",
        "HTTP 500 from Slack",
        "Prometheus graph",
        "http://prometheus.test/graph?g0.expr=up",
        f"{console.alertmanager}/#/alerts?filter=",
        "organization_id",
        "runbook",
    ):
        assert text in html, text
    response = await console.post(
        f"/console/deliveries/{dead}/retry",
        data={"csrf": token, "table": "payment_alerts", "alert": url.rsplit("/", 1)[1]},
    )
    assert response.status == 200
    assert f"delivery {dead} queued again" in await response.text()
    state = await console.bridge.storage.delivery_states([dead])
    assert state[dead][0] == "pending"
    again = await console.post(f"/console/deliveries/{dead}/retry", data={"csrf": token})
    assert again.status == 409
    html = await (await console.get(url)).text()
    assert "retried delivery" in html  # the audit trail is on the timeline
    assert "queued again" in html
    assert (await console.get("/console/alerts/payment_alerts/999999")).status == 404
    assert (await console.get("/console/alerts/pg_user/1")).status == 404


async def test_silence_creates_a_real_alertmanager_silence_with_the_alert_matchers(console):
    org = f"org-silence-{uuid.uuid4().hex[:8]}"  # one Alertmanager serves every test
    await fire(console, fingerprint="s1", severity="high", organization_id=org)
    url = await first_alert_url(console)
    token = await login(console, "responder")
    response = await console.post(
        f"{url}/silence", data={"csrf": token, "duration": "4h", "comment": "deploying fix"}
    )
    assert response.status == 200
    assert "silenced for 4h" in await response.text()
    silences = plain_http.get(f"{console.alertmanager}/api/v2/silences").json()
    ours = [
        s
        for s in silences
        if {"name": "organization_id", "value": org, "isRegex": False, "isEqual": True}
        in s["matchers"]
    ]
    assert len(ours) == 1
    matchers = {m["name"]: m["value"] for m in ours[0]["matchers"]}
    assert ours[0]["comment"] == "deploying fix"
    assert matchers["alertname"] == "PaymentFailureRateHigh"
    assert all(not m["isRegex"] and m["isEqual"] for m in ours[0]["matchers"])
    assert ours[0]["createdBy"] == "responder"
    bad = await console.post(f"{url}/silence", data={"csrf": token, "duration": "99y"})
    assert bad.status == 400
    html = await (await console.get(url)).text()
    assert "silenced" in html
    assert "duration=4h" in html


async def test_silence_reports_an_unreachable_alertmanager(console):
    await fire(console, fingerprint="s2")
    url = await first_alert_url(console)
    token = await login(console, "responder")
    console.bridge.config = type(console.bridge.config)(
        **{**console.bridge.config.__dict__, "alertmanager_url": "http://127.0.0.1:9"}
    )
    response = await console.post(f"{url}/silence", data={"csrf": token, "duration": "1h"})
    assert response.status == 502
    assert "unreachable (ConnectError)" in await response.text()
