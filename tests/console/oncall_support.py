"""The console's on-call tests' bridge: the bridge process's app (bridge + console) with an
on-call file written in the test's directory (tests/oncall/bridge_support.py's two people on a
weekly rotation, and a daily one), recording channels, a test-driven clock set on a Wednesday
of the week Berlin leaves summer time (Sunday 2026-10-25 is 25 hours long there)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bridge.app import BRIDGE
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import BridgeClient, Clock, make_config, notifiers
from tests.console.support import add_users
from tests.oncall.bridge_support import ONCALL_YAML, PUBLIC_URL, write_oncall

# Wednesday 2026-10-21 12:00 in Berlin (CEST); the weekly rotation that began Monday
# 2026-02-23 09:00 is in its 35th week (index 34: Alice's), the daily one that began
# 2026-10-01 in its 21st day (index 20: Bob's).
NOW = datetime(2026, 10, 21, 10, 0, tzinfo=UTC)
DST_WEEK = "2026-10-19"
DAILY = """\
  - id: daily
    time_zone: Europe/Berlin
    rotation: {type: daily, handoff: "09:00", start: "2026-10-01", people: [bob, alice]}
"""
CONSOLE_ONCALL_YAML = ONCALL_YAML.replace("escalation_policies:", DAILY + "escalation_policies:")


async def oncall_console(
    db_url: str,
    aiohttp_client: Any,
    tmp_path: Path,
    alertmanager: str,
    *,
    public_url: str = PUBLIC_URL,
    prometheus_url: str = "http://127.0.0.1:9",
) -> BridgeClient:
    chans = notifiers("slack", "email", "pagerduty", "sms", "voice")
    clock = Clock(NOW)
    config = make_config(
        db_url,
        alertmanager_url=alertmanager,
        prometheus_url=prometheus_url,
        public_url=public_url,
    )
    oncall = write_oncall(tmp_path, CONSOLE_ONCALL_YAML)
    app = create_bridge_app(config, notifiers=chans, clock=clock, workers=False, oncall=oncall)
    client = BridgeClient(
        await aiohttp_client(app), app[BRIDGE], chans, clock, alertmanager=alertmanager
    )
    await add_users(client.bridge.storage, NOW)
    return client
