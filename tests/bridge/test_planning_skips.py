"""Why ``plan_notification`` sends an alert event nowhere on a channel, as it records it
(``Plan.skips``, stored in ``alert_skips`` for the console's "not delivered" explanation):
pure, no database."""

from __future__ import annotations

from datetime import time, timedelta

from bridge.fatigue import FatigueRules, alert_key
from bridge.planning import Plan, plan_notification
from bridge.routing import Router
from bridge.storage.types import ConfigurationRow, PreferenceRow
from bridge.webhook import parse_notification
from tests.bridge.support import T0, am_alert, body, payload

RULES = FatigueRules(cooldown_seconds=600)


def plan(router: Router, *alerts: dict, states=None, **kw) -> tuple[Plan, list]:
    notification = parse_notification(body(payload(*alerts)))
    got = list(notification.alerts)
    keys = [alert_key(a) for a in got]
    return plan_notification(notification, got, keys, states or {}, router, RULES, T0, **kw), got


def reasons(p: Plan) -> set[tuple[str, str]]:
    return {(k.channel, k.reason) for k in p.skips}


def router(*available: str, prefs=(), configs=()) -> Router:
    r = Router(available)
    r.load(prefs, configs, "v1")
    return r


def test_channels_the_severity_wants_that_are_not_configured():
    p, _ = plan(router("slack"), am_alert(severity="critical"))
    assert reasons(p) == {("email", "not_configured"), ("pagerduty", "not_configured"),
                          ("sms", "not_configured")}  # fmt: skip
    assert [d.channel for d in p.deliveries] == ["slack"]


def test_minimum_severity_disabled_acknowledged_and_no_channel():
    prefs = [PreferenceRow("org-1", None, {}, "critical", None, None, "UTC")]
    p, _ = plan(router("slack", "email", prefs=prefs), am_alert(severity="high"))
    assert reasons(p) == {("*", "min_severity")}
    configs = [ConfigurationRow("org-1", "PaymentFailureRateHigh", None, False)]
    p, _ = plan(router("slack", "email", configs=configs), am_alert(severity="high"))
    assert reasons(p) == {("*", "disabled")}
    p, alerts = plan(router("slack", "email"), am_alert(severity="high"))
    acked = {(alerts[0].fingerprint, alerts[0].starts_at)}
    p, _ = plan(router("slack", "email"), am_alert(severity="high"), acknowledged=acked)
    assert reasons(p) == {("*", "acknowledged")}
    nothing = [PreferenceRow("org-1", [], {}, "low", None, None, "UTC")]
    p, _ = plan(router("slack", prefs=nothing), am_alert(severity="high"))
    assert reasons(p) == {("*", "no_channel")}


def test_quiet_hours_and_cooldown_say_until_when():
    quiet = [PreferenceRow("org-1", None, {}, "low", time(8, 0), time(12, 0), "UTC")]  # T0: 09:00
    p, _ = plan(router("slack", "email", prefs=quiet), am_alert(severity="high"))
    held = {(k.channel, k.reason, k.until) for k in p.skips}
    noon = T0.replace(hour=12, minute=0)
    assert held == {("slack", "quiet_hours", noon), ("email", "quiet_hours", noon)}
    assert len(p.deliveries) == 2  # held, not dropped

    r = router("slack")
    first, _ = plan(r, am_alert(severity="high"))
    again, _ = plan(
        r,
        am_alert(severity="high", starts_at=T0 + timedelta(seconds=1)),
        states=first.states,
    )
    [skip] = [k for k in again.skips if k.channel == "slack"]
    assert (skip.channel, skip.reason, skip.until) == (
        "slack",
        "cooldown",
        T0 + timedelta(minutes=10),
    )
