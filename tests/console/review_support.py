"""What the review's tests share: a history to review on the on-call console
(``oncall_support.py``, its clock at ``NOW``, Wednesday noon in Berlin)."""

from __future__ import annotations

from datetime import timedelta

from tests.console.oncall_support import NOW
from tests.console.support import fire, login, switch_user


async def seed_review(client) -> tuple[int, int]:
    """A label set of org-a that fired four times and resolved three, one of org-b's once; an
    incident of org-a at noon in Berlin (Alice paged, the responder acknowledges 20 s later,
    resolved) and one of org-b at midnight there, 12 hours later (Alice, then Bob a minute
    later, both outside working hours; the admin acknowledges 5 minutes after the first page).
    The two incidents' ids; the client is left signed in as the admin."""
    storage = client.bridge.storage
    # org-a's slow widget loads fired and resolved three times; org-b's once
    for i in range(3):
        start = NOW - timedelta(days=2, hours=i)
        for status in ("firing", "resolved"):
            await fire(
                client,
                name="WidgetSlowLoads",
                category="widget",
                fingerprint="flap-a",
                organization_id="org-a",
                labels={"region": "eu"},
                starts_at=start,
                status=status,
                ends_at=start + timedelta(minutes=3) if status == "resolved" else None,
            )
    await fire(
        client,
        name="WidgetSlowLoads",
        category="widget",
        fingerprint="flap-a",
        organization_id="org-a",
        labels={"region": "eu"},
        starts_at=NOW - timedelta(days=1),
    )  # and a fourth time, still firing
    start = NOW - timedelta(days=2)
    for status in ("firing", "resolved"):
        await fire(
            client,
            name="WidgetSlowLoads",
            category="widget",
            fingerprint="once-b",
            organization_id="org-b",
            starts_at=start,
            status=status,
            ends_at=start + timedelta(minutes=3) if status == "resolved" else None,
        )

    # an incident at noon in Berlin: Alice paged in working hours, acknowledged 20 s later
    await fire(
        client, name="DatabaseErrorsHigh", fingerprint="db-a", category="system",
        organization_id="org-a", severity="critical", starts_at=NOW,
    )  # fmt: skip
    assert await client.bridge.escalator.run_once() == 1
    csrf = await login(client, "responder")
    first = (await storage.query("SELECT max(id) AS id FROM incidents"))[0]["id"]
    client.clock.advance(20)
    await client.post(f"/console/incidents/{first}/acknowledge", data={"csrf": csrf})
    await client.post(f"/console/incidents/{first}/resolve", data={"csrf": csrf})
    # one at midnight in Berlin (18:00 in New York): Alice, then Bob a minute later, both
    # outside working hours; acknowledged by the admin 5 minutes after the first page
    client.clock.advance(12 * 3600 - 20)
    await fire(
        client, name="DatabaseErrorsHigh", fingerprint="db-b", category="system",
        organization_id="org-b", severity="critical", starts_at=client.clock.now,
    )  # fmt: skip
    assert await client.bridge.escalator.run_once() == 1
    client.clock.advance(61)
    assert await client.bridge.escalator.run_once() == 1
    second = (await storage.query("SELECT max(id) AS id FROM incidents"))[0]["id"]
    csrf = await switch_user(client, "admin")
    client.clock.advance(300 - 61)
    await client.post(f"/console/incidents/{second}/acknowledge", data={"csrf": csrf})

    return first, second
