"""The bridge's subcommands of ``passiton-monitoring``: migrate, test-alerts, doctor, purge,
and what the ``bridge`` subcommand runs (``cmd_bridge``; passiton_monitoring.bridge_process adds
it, with the console mounted: the bridge does not import the console).

``COMMANDS`` maps a name to (help text, configure(subparser), run(args) -> exit code); the CLI
adds them. Configuration comes from the environment once, here, and is passed down.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from bridge.app import SubApp
from bridge.channels.registry import aclose_notifiers, build_notifiers
from bridge.channels.webpush_keys import VapidKeys
from bridge.codec import encode_message
from bridge.config import DEFAULT_LISTEN, BridgeConfig
from bridge.delivery import DeliveryEngine
from bridge.doctor import doctor
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Message
from bridge.oncall.cli import cmd_oncall, configure_oncall
from bridge.server import quiet_noisy_loggers, run
from bridge.storage import NewDelivery, StorageUnavailable, open_database
from passiton_common.http_client import async_client
from passiton_common.settings import listen_argument

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``45s``, ``2w``; a bare number is days."""
    match = _DURATION.match(value)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration like 90d, 12h or 30m, got {value!r}")
    amount, unit = float(match.group(1)), match.group(2) or "d"
    if amount <= 0:
        raise argparse.ArgumentTypeError("the duration must be positive")
    return timedelta(seconds=amount * _UNITS[unit])


def load_config(
    env: Mapping[str, str] | None = None, out: TextIO = sys.stderr
) -> BridgeConfig | None:
    try:
        return BridgeConfig.from_env(os.environ if env is None else env)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=out)
        return None


# -- bridge -----------------------------------------------------------------------------------


def configure_bridge(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--listen", type=listen_argument, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}"
    )


def cmd_bridge(args: argparse.Namespace, *, subapps: Mapping[str, SubApp] | None = None) -> int:
    """Serve the bridge, with ``subapps`` mounted (passiton_monitoring passes the console)."""

    config = load_config()
    if config is None:
        return 2
    if not config.webhook_token:
        print(
            "configuration error: BRIDGE_WEBHOOK_TOKEN must be set (Alertmanager sends it)",
            file=sys.stderr,
        )
        return 2
    host, port = args.listen or (config.listen_host, config.listen_port)
    run(config, host, port, subapps=subapps)
    return 0


# -- migrate ----------------------------------------------------------------------------------


async def migrate(config: BridgeConfig) -> list[str]:

    async with open_database(config.database_url, config.state_dir) as storage:
        return await storage.migrate()


def cmd_migrate(_: argparse.Namespace) -> int:

    config = load_config()
    if config is None:
        return 2
    try:
        applied = asyncio.run(migrate(config))
    except StorageUnavailable as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return 1
    if applied:
        for version in applied:
            print(f"applied {version}")
    else:
        print("database schema is up to date")
    return 0


# -- purge ------------------------------------------------------------------------------------


def _configure_purge(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--older-than",
        type=parse_duration,
        metavar="AGE",
        help="e.g. 90d, 12h (default: RETENTION_DAYS days)",
    )


async def purge(config: BridgeConfig, cutoff: datetime) -> dict[str, int]:

    async with open_database(config.database_url, config.state_dir) as storage:
        return await storage.purge(cutoff)


def cmd_purge(args: argparse.Namespace) -> int:

    config = load_config()
    if config is None:
        return 2
    cutoff = datetime.now(UTC) - (args.older_than or timedelta(days=config.retention_days))
    try:
        counts = asyncio.run(purge(config, cutoff))
    except StorageUnavailable as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return 1
    for table, deleted in counts.items():
        print(f"{table}: {deleted} deleted")
    print(f"total: {sum(counts.values())} rows from before {cutoff:%Y-%m-%d %H:%M:%S} UTC deleted")
    return 0


# -- test-alerts ------------------------------------------------------------------------------


def _configure_test_alerts(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=30.0,
        help="seconds to keep retrying transient failures (default 30)",
    )


def synthetic_message(channel: str, now: datetime) -> Any:

    alert = Alert(
        fingerprint=f"passiton-test-{uuid.uuid4().hex[:16]}",
        status="firing",
        labels={
            "alertname": "PassItOnTestAlert",
            "severity": "low",
            "category": "system",
            "channel": channel,
        },
        annotations={
            "summary": f"Test alert for the {channel} channel",
            "description": "Sent by `passiton-monitoring test-alerts`; no action needed.",
        },
        starts_at=now,
        ends_at=None,
    )
    return Message(
        group_key=f"passiton-test-alerts/{channel}",
        status="firing",
        receiver="passiton-test-alerts",
        alerts=(alert,),
        common_labels=dict(alert.labels),
        notice="test alert",
    )


async def run_test_alerts(
    config: BridgeConfig,
    notifiers: Mapping[str, Any],
    *,
    give_up_after: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, tuple[str, str | None]]:
    """Queue one test alert per channel and run the real delivery path until each is settled;
    returns channel -> (state, last error)."""

    # A short maximum age: a channel still failing when the time is up counts as failed.
    retry = replace(config.retry, max_age_seconds=max(give_up_after, 1.0))
    async with open_database(config.database_url, config.state_dir) as storage:
        if config.auto_migrate:
            await storage.migrate()
        now = clock()
        rows = [
            NewDelivery(
                name,
                f"passiton-test-alerts/{name}",
                encode_message(synthetic_message(name, now)),
                now,
            )
            for name in notifiers
        ]
        ids = await storage.enqueue(rows, now)
        by_id = dict(zip(ids, notifiers, strict=True))
        engine = DeliveryEngine(
            storage,
            dict(notifiers),
            retry,
            BridgeMetrics(),
            clock,
            concurrency=1,
            timeout_seconds=min(config.delivery_timeout_seconds, max(give_up_after, 1.0)),
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + give_up_after
        while True:
            await engine.run_once(ids=ids)
            states = await storage.delivery_states(ids)
            if all(s[0] != "pending" for s in states.values()) or loop.time() > deadline:
                break
            await asyncio.sleep(0.2)
        return {by_id[i]: states[i] for i in ids}


def cmd_test_alerts(args: argparse.Namespace) -> int:

    quiet_noisy_loggers()
    config = load_config()
    if config is None:
        return 2
    return asyncio.run(_test_alerts(config, args.timeout))


async def _test_alerts(config: BridgeConfig, give_up_after: float) -> int:

    async with async_client() as http:
        notifiers = build_notifiers(config.channels, http)
        try:
            outcomes = await run_test_alerts(config, notifiers, give_up_after=give_up_after)
        except StorageUnavailable as exc:
            print(f"database unavailable: {exc}", file=sys.stderr)
            return 1
        finally:
            await aclose_notifiers(notifiers)
    failed = 0
    for channel, (state, error) in outcomes.items():
        if state == "sent":
            print(f"{channel}: ok")
        else:
            failed += 1
            label = "failed" if state == "dead" else "still failing"
            print(f"{channel}: {label}: {error}")
    return 1 if failed else 0


# -- doctor -----------------------------------------------------------------------------------


def cmd_doctor(_: argparse.Namespace) -> int:
    checks = asyncio.run(doctor(os.environ))
    for check in checks:
        mark = "ok" if check.ok and not check.warning else ("warn" if check.ok else "FAIL")
        print(f"[{mark:>4}] {check.name}: {check.detail}")
        if check.fix and (not check.ok or check.warning):
            print(f"       fix: {check.fix}")
    failed = [c for c in checks if not c.ok]
    print("all checks passed" if not failed else f"{len(failed)} check(s) failed")
    return 1 if failed else 0


def _no_arguments(_: argparse.ArgumentParser) -> None:
    return None


def cmd_webpush_keys(_: argparse.Namespace) -> int:
    keys = VapidKeys.generate()
    print(f"WEBPUSH_VAPID_PRIVATE_KEY={keys.private_key}")
    print(f"WEBPUSH_VAPID_PUBLIC_KEY={keys.public_key}")
    return 0


COMMANDS: dict[
    str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]
] = {
    "migrate": ("create/update the bridge's tables in DATABASE_URL", _no_arguments, cmd_migrate),
    "test-alerts": (
        "send one test alert through every configured channel; exit 1 if any failed",
        _configure_test_alerts,
        cmd_test_alerts,
    ),
    "doctor": (
        "check configuration, database, channels, Prometheus and Alertmanager",
        _no_arguments,
        cmd_doctor,
    ),
    "purge": (
        "delete alert rows older than --older-than (e.g. 90d)",
        _configure_purge,
        cmd_purge,
    ),
    "oncall": (
        "on-call: check the file, who is on call, overrides (add, swap, list, remove)",
        configure_oncall,
        cmd_oncall,
    ),
    "webpush-keys": (
        "print a new VAPID key pair for Web Push (WEBPUSH_VAPID_PRIVATE_KEY and _PUBLIC_KEY)",
        _no_arguments,
        cmd_webpush_keys,
    ),
}
