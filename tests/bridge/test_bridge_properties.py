"""Property: whatever order, duplication and replica a stream of notifications arrives in, each
alert instance is stored once and each channel hears its firing and its resolve at most once,
never a firing after its resolve."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.app import Bridge
from bridge.webhook import parse_notification
from tests.bridge.support import T0, alert_rows, am_alert, body, make_config, notifiers, payload

EXAMPLES = itertools.count()

events = st.lists(
    st.tuples(
        st.integers(0, 2),  # which alert (fingerprint)
        st.integers(0, 1),  # which instance of it (startsAt)
        st.sampled_from(["firing", "resolved"]),
        st.integers(0, 1),  # which replica receives it
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=events)
async def test_property_each_instance_notified_at_most_once_per_state(db_url, stream):
    prefix = f"x{next(EXAMPLES)}-"
    config = make_config(db_url, flap_cycles=1000)
    replicas = [Bridge(config, notifiers("slack", "pagerduty")) for _ in range(2)]
    # One log per channel, in the order the sends happened, whichever replica made them.
    heard: dict[str, list] = {"slack": [], "pagerduty": []}
    for bridge in replicas:
        for channel, notifier in bridge.notifiers.items():
            notifier.messages = heard[channel]
    for bridge in replicas:
        await bridge.start(workers=False)
    try:
        posted: list[tuple[str, int, str]] = []
        for which, instance, status, replica in stream:
            fingerprint = f"{prefix}{which}"
            alert = am_alert(
                f"Alert{which}",
                fingerprint=fingerprint,
                status=status,
                severity="critical",
                starts_at=T0 + timedelta(hours=instance),
                ends_at=T0 + timedelta(hours=instance, minutes=5) if status == "resolved" else None,
            )
            notification = parse_notification(body(payload(alert)))
            # Sometimes both replicas get it at once (an HA Alertmanager pair).
            targets = replicas if replica else [replicas[0]]
            await asyncio.gather(*(b.ingest(notification) for b in targets))
            posted.append((fingerprint, instance, status))
            await asyncio.gather(*(b.delivery.run_once() for b in replicas))

        rows = [
            r for r in await alert_rows(replicas[0].storage) if r["fingerprint"].startswith(prefix)
        ]
        instances = {(f, i) for f, i, _ in posted}
        assert len(rows) == len(instances)
        for channel in ("slack", "pagerduty"):
            told: list[tuple[str, str, object]] = [
                (a.status, a.fingerprint, a.starts_at)
                for m in heard[channel]
                for a in m.alerts
                if a.fingerprint.startswith(prefix)
            ]
            assert len(told) == len(set(told)), f"{channel} heard something twice: {told}"
            resolved = {(f, T0 + timedelta(hours=i)) for f, i, s in posted if s == "resolved"}
            for n, (status, fingerprint, starts_at) in enumerate(told):
                if status == "firing":
                    # Never a firing once the channel has heard that instance resolve.
                    assert ("resolved", fingerprint, starts_at) not in told[:n]
                else:
                    assert (fingerprint, starts_at) in resolved
    finally:
        for bridge in replicas:
            await bridge.stop()
