"""``passiton-monitoring doctor``: the configuration, the database and every neighbour, checked."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from bridge.config import BridgeConfig
from bridge.deadman import LAST_SEEN, STATE
from bridge.double_paging import alertmanager_pages_pagerduty, double_paging_verdict
from bridge.sanitize import redact
from bridge.storage import StorageUnavailable, open_database
from passiton_common.http_client import async_client


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    warning: bool = False


def _endpoint(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


async def _tcp(host: str, port: int, seconds: float = 3.0) -> str | None:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), seconds)
    except (OSError, TimeoutError, socket.gaierror) as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


async def _http_ready(url: str, seconds: float = 3.0) -> str | None:

    try:
        async with async_client(timeout=seconds) as http:
            response = await http.get(url.rstrip("/") + "/-/ready")
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


async def doctor(env: Mapping[str, str]) -> list[Check]:

    checks: list[Check] = []
    try:
        config = BridgeConfig.from_env(env)
    except ValueError as exc:
        return [Check("configuration", False, str(exc), "fix the variable named above")]
    checks.append(Check("configuration", True, "environment parsed"))
    checks.append(
        Check(
            "webhook token",
            bool(config.webhook_token),
            "BRIDGE_WEBHOOK_TOKEN is set" if config.webhook_token else "BRIDGE_WEBHOOK_TOKEN unset",
            "set BRIDGE_WEBHOOK_TOKEN to a long random secret, and the same in alertmanager.yml",
        )
    )
    enabled = config.channels.enabled
    checks.append(
        Check(
            "channels",
            True,
            ", ".join(enabled),
            "set SLACK_WEBHOOK_URL, SMTP_HOST, TWILIO_* or PAGERDUTY_INTEGRATION_KEY"
            if enabled == ("console",)
            else "",
            warning=enabled == ("console",),
        )
    )
    checks.extend(oncall_checks(config))
    scheme = (
        config.database_url.split("://", 1)[0]
        if config.database_url
        else f"the embedded PostgreSQL in {config.state_dir}"
    )
    try:
        async with open_database(config.database_url, config.state_dir) as storage:
            await asyncio.wait_for(storage.ping(), 5)
            checks.append(Check("database", True, f"{scheme} answers"))
            pending = await storage.pending_migrations()
            checks.append(
                Check(
                    "migrations",
                    not pending,
                    f"pending: {', '.join(pending)}" if pending else "schema up to date",
                    "run `passiton-monitoring migrate`",
                )
            )
            if not pending:
                depth, oldest, dead = await storage.queue_stats()
                age = (datetime.now(UTC) - oldest).total_seconds() if oldest else 0.0
                checks.append(
                    Check(
                        "delivery queue",
                        True,
                        f"{depth} pending (oldest {age:.0f}s), dead letters: "
                        + (", ".join(f"{c}={n}" for c, n in sorted(dead.items())) or "none"),
                        "inspect alert_deliveries WHERE state = 'dead' for last_error"
                        if dead
                        else "",
                        warning=bool(dead),
                    )
                )
                checks.append(await _watchdog_check(storage, config))
    except (StorageUnavailable, TimeoutError, OSError) as exc:
        checks.append(
            Check(
                "database",
                False,
                f"{scheme}: {redact(str(exc))}",
                "check DATABASE_URL and that the database server is running",
            )
        )
    channels = config.channels
    endpoints = []
    if channels.slack:
        slack_url = channels.slack.api_url if channels.slack.web_api else channels.slack.webhook_url
        endpoints.append(("slack", *_endpoint(slack_url or "")))
    if channels.pagerduty:
        endpoints.append(("pagerduty", *_endpoint(channels.pagerduty.events_url)))
    if channels.sms:
        endpoints.append(("sms", *_endpoint(channels.sms.api_url)))
    if channels.email:
        endpoints.append(("email", channels.email.host, channels.email.port))
    for name, host, port in endpoints:
        error = await _tcp(host, port)
        checks.append(
            Check(
                f"{name} endpoint",
                error is None,
                f"{host}:{port} " + ("reachable" if error is None else f"unreachable: {error}"),
                "check the channel's URL/host variables and outbound network access",
            )
        )
    for name, url, variable in (
        ("prometheus", config.prometheus_url, "PROMETHEUS_URL"),
        ("alertmanager", config.alertmanager_url, "ALERTMANAGER_URL"),
    ):
        error = await _http_ready(url)
        checks.append(
            Check(
                name,
                error is None,
                f"{url} " + ("ready" if error is None else f"not ready: {error}"),
                f"start {name} or set {variable}",
            )
        )
    if channels.pagerduty:
        pages = await alertmanager_pages_pagerduty(config.alertmanager_url)
        verdict = double_paging_verdict(pages, channels.pagerduty.dedup)
        checks.append(Check("pagerduty paging", *verdict))
    return checks


def oncall_checks(config: BridgeConfig) -> list[Check]:
    """The on-call file (already validated by the configuration's parse) and what answering a
    page needs: the public listener, its public URL (what Twilio signs), Twilio's token."""
    oncall = config.oncall
    if oncall is None:
        return [Check("on-call", True, "ONCALL_CONFIG unset: the severity table pages")]
    checks = [
        Check(
            "on-call",
            True,
            f"{len(oncall.people)} people, {len(oncall.schedules)} schedules,"
            f" {len(oncall.policies)} policies, {len(oncall.routes)} routes",
        )
    ]
    answers = config.public_listen is not None and bool(config.public_url)
    host, port = config.public_listen or ("", 0)
    checks.append(
        Check(
            "public listener",
            answers,
            f"{config.public_url} (listening on {host}:{port})"
            if answers
            else "pages cannot be answered by SMS, call, Slack button or e-mail link",
            "set BRIDGE_PUBLIC_LISTEN and BRIDGE_PUBLIC_URL (the address Twilio, Slack and"
            " PagerDuty reach it at)",
            warning=not answers,
        )
    )
    vias = {via for p in oncall.policies.values() for step in p.steps for via in step.via}
    needs = {"sms": "sms", "voice": "sms", "email": "email", "slack": "slack", "push": "webpush"}
    missing = sorted(
        via for via in vias if via in needs and getattr(config.channels, needs[via], None) is None
    )
    if missing:
        checks.append(
            Check(
                "on-call channels",
                False,
                "the policies page by " + ", ".join(missing) + " but no such channel is configured",
                "configure TWILIO_* (sms, voice), SMTP_* (email), SLACK_* (slack) or"
                " WEBPUSH_* (push)",
            )
        )
    return checks


async def _watchdog_check(storage: Any, config: BridgeConfig) -> Check:

    async with storage.transaction() as tx:
        last_seen = await tx.get_state(LAST_SEEN)
        state = await tx.get_state(STATE)
    fix = (
        "make sure Prometheus evaluates the Watchdog rule and Alertmanager routes it to the bridge"
    )
    if state == "down":
        return Check("watchdog", False, "the dead man's switch has fired: pipeline down", fix)
    if last_seen is None:
        return Check("watchdog", True, "no bridge has run yet", fix, warning=True)
    age = (datetime.now(UTC) - datetime.fromisoformat(last_seen)).total_seconds()
    overdue = config.deadman_after_seconds > 0 and age > config.deadman_after_seconds
    return Check("watchdog", True, f"last seen {age:.0f}s ago", fix if overdue else "", overdue)
