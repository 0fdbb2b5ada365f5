"""Alert fatigue: per-alert, per-channel cooldown and flapping detection.

An alert's identity here is its labels without ``severity`` (``alert_key``), so the same
problem escalating from high to critical is recognised as "severity rose" and notified again,
while the same alert firing again within the cooldown is not.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime

from bridge.codec import alert_to_dict, encode_json
from bridge.model import SEVERITY_RANK, Alert
from bridge.storage import FatigueState, FlapState

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


def cooldown_allows(
    state: FatigueState | None, alert: Alert, now: datetime, rules: FatigueRules
) -> bool:
    """Whether this channel may hear about this alert event now.

    A firing passes unless the same alert was sent within the cooldown at the same or a higher
    severity. A resolve passes only when this alert instance's firing was the last one sent on
    the channel (a resolve for a firing that was held back would only be noise).
    """
    if state is None:
        return True
    if alert.status == "resolved":
        return state.last_starts_at == alert.starts_at
    if rules.cooldown_seconds <= 0 or SEVERITY_RANK[alert.severity] > state.last_severity_rank:
        return True
    return (now - state.last_sent_at).total_seconds() >= rules.cooldown_seconds


def sent(alert: Alert, now: datetime) -> FatigueState:
    return FatigueState(now, SEVERITY_RANK[alert.severity], alert.starts_at)


def flap_step(
    state: FlapState | None, alert: Alert, now: datetime, rules: FatigueRules
) -> tuple[FlapState, str]:
    """The next flap state and the verdict: ``normal``, ``notice`` (just started flapping:
    send one flapping notice) or ``quiet`` (flapping: tell no one)."""
    snapshot = alert_to_dict(alert)
    if state is None:
        state = FlapState(now, 0, False, now, snapshot)
    if state.flapping:
        if (now - state.last_event_at).total_seconds() < rules.flap_settle_seconds:
            return replace(state, last_event_at=now, last_alert=snapshot), "quiet"
        state = replace(state, flapping=False, cycles=0, window_started_at=now)
    if (now - state.window_started_at).total_seconds() > rules.flap_window_seconds:
        state = replace(state, window_started_at=now, cycles=0)
    cycles = state.cycles + (1 if alert.status == "resolved" else 0)
    flapping = cycles >= rules.flap_cycles
    state = replace(state, cycles=cycles, flapping=flapping, last_event_at=now, last_alert=snapshot)
    return state, "notice" if flapping else "normal"
