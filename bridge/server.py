"""Runs the bridge application until SIGTERM/SIGINT, then shuts it down cleanly."""

from __future__ import annotations

import logging
import signal
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aiohttp import web

from bridge.app import SubApp, create_app
from bridge.config import BridgeConfig
from bridge.storage.embedded import database_url
from passiton_common import event_loop

log = logging.getLogger(__name__)

# These log every request URL at INFO; a Slack webhook URL is a credential.
QUIET_LOGGERS = ("httpx", "httpcore", "twilio", "aiosmtplib")


def quiet_noisy_loggers() -> None:
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def runner_options(config: BridgeConfig) -> dict[str, Any]:
    """aiohttp runner options: aiohttp's keep-alive timer runs from the moment a connection opens,
    so a client that never completes its request head is closed after the header timeout."""
    return {
        "access_log": None,
        "keepalive_timeout": config.header_timeout_seconds,
        # after an early answer (413, 503 on a stalled body) unread body is drained this long
        "lingering_time": 1.0,
    }


def _exit_on_signal(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


def run(
    config: BridgeConfig, host: str, port: int, *, subapps: Mapping[str, SubApp] | None = None
) -> None:
    """Serve until a signal; aiohttp then stops accepting, finishes in-flight requests, and the
    app's cleanup stops the delivery workers (letting sends in flight finish) and closes pools.
    ``subapps``: see ``create_app`` (the console, when passiton_monitoring runs the bridge).
    With ``DATABASE_URL`` unset the embedded PostgreSQL is joined first and left last."""
    quiet_noisy_loggers()
    # Until aiohttp takes over the signals, SIGTERM unwinds (and leaves the embedded PostgreSQL)
    # instead of killing the process where it stands.
    signal.signal(signal.SIGTERM, _exit_on_signal)
    with database_url(config.database_url, config.state_dir) as url:
        app = create_app(replace(config, database_url=url), subapps=subapps)
        loop = event_loop.new_event_loop()
        log.info(
            "bridge starting",
            extra={
                "listen": f"{host}:{port}",
                "database": "postgresql" if config.database_url else "embedded postgresql",
                "channels": list(config.channels.enabled) if config.channels else [],
                "event_loop": event_loop.name(loop),
            },
        )
        web.run_app(
            app,
            host=host,
            port=port,
            print=None,
            shutdown_timeout=10.0,
            handle_signals=True,
            loop=loop,
            **runner_options(config),
        )
    log.info("bridge stopped")
