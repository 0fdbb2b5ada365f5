"""Why an alert was not delivered, per channel its severity would use: read from what the ingest
decided and stored where it decided it (``alert_skips``, written with the deliveries by
``bridge.planning.plan_notification``), the deliveries themselves, and what Alertmanager said
of the alert (silenced, inhibited: those it never sent the bridge at all)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from bridge.routing import wanted_channels
from bridge.storage.console import AlertRow, DeliveryRow, Skip
from bridge.storage.types import PreferenceRow

Stamp = Callable[[datetime | None], str]
# what each stored reason means, in a sentence for the alert page ({until}: a time, UTC)
REASONS = {
    "not_configured": "this channel is not configured on the bridge (no channel configured)",
    "min_severity": "below the organization's minimum severity",
    "disabled": "this alert is turned off for the organization",
    "acknowledged": "acknowledged: repeats to the channels stop",
    "snoozed": "its incident was snoozed: pages held",
    "flapping": "flapping: one notice was sent, then quiet until it settles",
    "incident": "its incident had been paged already (one page per incident)",
    "no_channel": "no channel is configured for its severity and organization",
    "oncall": "routed to on call: the escalation pages people instead of this list",
    "cooldown": "cooldown: the same alert was sent on this channel recently; held until {until}",
    "once": "sent once already (a resolve goes only where its firing went)",
    "quiet_hours": "held by the organization's quiet hours until {until}",
}


@dataclass(frozen=True)
class ChannelLine:
    channel: str
    event: str  # firing | resolved
    state: str  # sent, pending, retrying, dead, held, not sent
    why: str


def _reason(skip: Skip, stamp: Stamp) -> str:
    text = REASONS.get(skip.reason, skip.reason.replace("_", " "))
    until = stamp(skip.until) + " UTC" if skip.until is not None else "later"
    return text.replace("{until}", until)


def explain(
    alert: AlertRow,
    deliveries: list[DeliveryRow],
    skips: list[Skip],
    muted: list[tuple[str, str]],
    prefs: PreferenceRow | None,
    stamp: Stamp,
) -> list[ChannelLine]:
    """One line per channel the alert's severity would use (and any other it reached), per
    event it had: delivered, held, or why not."""
    channels = list(wanted_channels(alert.severity, prefs))
    for d in deliveries:
        if d.channel not in channels:
            channels.append(d.channel)
    for k in skips:
        if k.channel != "*" and k.channel not in channels:
            channels.append(k.channel)
    events = ["firing"] + (["resolved"] if alert.status == "resolved" else [])
    lines = []
    for event in events:
        mine = [k for k in skips if k.status == event]
        every = next((k for k in mine if k.channel == "*"), None)
        sent = {
            d.channel: d
            for d in deliveries
            if d.message_status == event and d.carries(alert.fingerprint, alert.starts_at)
        }
        for channel in channels:
            own = next((k for k in mine if k.channel == channel), None)
            delivery = sent.get(channel)
            if delivery is not None:
                held = own is not None and own.reason == "quiet_hours"
                why = _reason(own, stamp) if held and own is not None else ""
                lines.append(ChannelLine(channel, event, delivery.display_state, why))
            elif own is not None:
                state = "held" if own.reason == "cooldown" else "not sent"
                lines.append(ChannelLine(channel, event, state, _reason(own, stamp)))
            elif every is not None:
                lines.append(ChannelLine(channel, event, "not sent", _reason(every, stamp)))
            elif not mine:
                why = (
                    "no decision recorded (stored before the bridge kept its reasons, or "
                    "Alertmanager never sent this event)"
                )
                lines.append(ChannelLine(channel, event, "not sent", why))
            else:
                lines.append(ChannelLine(channel, event, "not sent", "not routed to it"))
    for kind, text in muted if alert.status == "firing" else ():
        # Alertmanager holds it back: nothing more of it (repeats, its resolve) reaches the
        # bridge, on any channel, while so
        why = f"{text} in Alertmanager: nothing more of it reaches the bridge while so"
        lines.append(ChannelLine("every channel", "firing", kind, why))
    return lines
