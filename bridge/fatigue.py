"""Alert fatigue: per-alert, per-channel cooldown and flapping detection.

An alert's identity here is its labels without ``severity`` (``alert_key``), so the same
problem escalating from high to critical is recognised as "severity rose" and notified again,
while the same alert firing again within the cooldown is not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bridge.codec import alert_to_dict, encode_json
from bridge.model import SEVERITY_RANK, Alert, AlertState, FatigueState

FLAPPING_NOTICE = "flapping"


@dataclass(frozen=True)
class FatigueRules:
    cooldown_seconds: float = 1800.0
    flap_cycles: int = 4
    flap_window_seconds: float = 3600.0
    flap_settle_seconds: float = 1800.0


def alert_key(alert: Alert) -> str:
    labels = {k: v for k, v in alert.labels.items() if k != "severity"}
    return hashlib.sha256(encode_json(dict(sorted(labels.items()))).encode()).hexdigest()[:32]


def cooldown_verdict(
    state: FatigueState | None, alert: Alert, now: datetime, rules: FatigueRules
) -> tuple[str, datetime | None]:
    """Whether this channel hears about this alert event: ``send``, ``skip`` or ``hold`` (with
    when the hold ends).

    A firing is held when the same alert was sent within the cooldown at the same or a higher
    severity; it is skipped when this very instance was sent already. A resolve is sent only
    when this instance's firing was the last one sent on the channel (a resolve for a firing
    that was held back would only be noise).
    """
    if state is None:
        return "send", None
    this_one = state.same_instance(alert.fingerprint, alert.starts_at)
    if alert.status == "resolved":
        return ("send" if this_one else "skip"), None
    if this_one:
        return "skip", None
    if rules.cooldown_seconds <= 0 or SEVERITY_RANK[alert.severity] > state.last_severity_rank:
        return "send", None
    until = state.last_sent_at + timedelta(seconds=rules.cooldown_seconds)
    return ("send", None) if now >= until else ("hold", until)


def sent(alert: Alert, now: datetime) -> FatigueState:
    return FatigueState(now, SEVERITY_RANK[alert.severity], alert.starts_at, alert.fingerprint)


def flap_step(
    state: AlertState | None, alert: Alert, now: datetime, rules: FatigueRules
) -> tuple[AlertState, str, bool]:
    """The next state, the verdict and whether the state changed.

    Verdicts: ``normal``; ``notice`` (it just started flapping: send one flapping notice);
    ``quiet`` (it is flapping: tell no one). Only resolves count cycles, so a firing of a
    quiet alert changes nothing and costs no write.
    """
    if state is None:
        state = AlertState(window_started_at=now, last_event_at=now)
    else:
        state = replace(state, channels=dict(state.channels))
    if state.flapping:
        last = state.last_event_at or state.window_started_at
        if (now - last).total_seconds() < rules.flap_settle_seconds:
            state.last_event_at, state.last_alert = now, alert_to_dict(alert)
            return state, "quiet", True
        state.flapping, state.cycles, state.window_started_at = False, 0, now
    if alert.status != "resolved":
        return state, "normal", False
    if (now - state.window_started_at).total_seconds() > rules.flap_window_seconds:
        state.window_started_at, state.cycles = now, 0
    state.cycles += 1
    state.last_event_at = now
    if state.cycles >= rules.flap_cycles:
        state.flapping, state.last_alert = True, alert_to_dict(alert)
        return state, "notice", True
    return state, "normal", True
