"""The bridge's configuration, parsed once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.channels.config import ChannelsConfig
from bridge.retry import RetryPolicy
from bridge.storage.connection import check_url
from passiton_common.settings import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    parse_listen,
    read_secrets,
)

DEFAULT_LISTEN = "0.0.0.0:9821"
__all__ = ["DEFAULT_LISTEN", "BridgeConfig", "ConfigError", "parse_listen", "parse_rate_limits"]


_WINDOWS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate_limits(value: str) -> dict[str, tuple[int, float]]:
    """``sms=10/h,email=60/h`` -> {channel: (sends, window seconds)}; empty means none."""
    limits: dict[str, tuple[int, float]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        channel, sep, rate = item.partition("=")
        count, slash, unit = rate.strip().partition("/")
        if not sep or not slash or not count.strip().isdigit() or unit.strip() not in _WINDOWS:
            raise ConfigError(
                f"BRIDGE_RATE_LIMITS entries look like sms=10/h (per s, m, h or d), got {item!r}"
            )
        if int(count) < 1:
            raise ConfigError(f"BRIDGE_RATE_LIMITS: {item!r} must allow at least one send")
        limits[channel.strip()] = (int(count), _WINDOWS[unit.strip()])
    return limits


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the bridge needs; built by ``from_env`` or directly in tests."""

    # postgresql://… (may hold a password); empty: the embedded PostgreSQL in state_dir
    database_url: str = field(default="", repr=False)
    webhook_token: str = field(default="", repr=False)
    retention_days: int = 90
    state_dir: Path = Path(".passiton")
    listen_host: str = "0.0.0.0"
    listen_port: int = 9821
    max_body_bytes: int = 4 * 1024 * 1024
    # A connection without a complete request head (or idle) this long is closed; a body not
    # received in body_timeout_seconds is answered 503 (Alertmanager retries it, a stalled
    # sender no longer holds the handler).
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    auto_migrate: bool = True
    db_pool_size: int = 10
    # Alert fatigue: no repeat notification of the same alert on a channel within the cooldown
    # unless its severity rose; N fire/resolve cycles within the window mark it flapping, and it
    # stays quiet until no change for flap_settle_seconds.
    cooldown_seconds: float = 1800.0
    flap_cycles: int = 4
    flap_window_seconds: float = 3600.0
    flap_settle_seconds: float = 1800.0
    # Dead man's switch: 0 disables it.
    deadman_after_seconds: float = 600.0
    # Routing reload, dead man's switch, settled flaps, queue gauges, daily retention.
    maintenance_interval_seconds: float = 5.0
    # Delivery workers, per channel; the lease bounds how long a crashed bridge holds a claim.
    delivery_concurrency: int = 4
    delivery_poll_seconds: float = 1.0
    delivery_timeout_seconds: float = 30.0
    delivery_lease_seconds: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Per destination (channel + recipients) and replica: at most N sends per window; more wait.
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    prometheus_url: str = "http://127.0.0.1:9090"
    # The hourly history rollup (bridge/rollup.py) checks this often for completed hours; 0: off.
    rollup_interval_seconds: float = 300.0
    alertmanager_url: str = "http://127.0.0.1:9093"
    channels: ChannelsConfig | Any = None
    # The console's session signing key; empty: a random key kept in bridge_state.
    console_secret: str = field(default="", repr=False)
    console_session_seconds: float = 12 * 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BridgeConfig:

        env = read_secrets(env)
        state_dir = Path(env.get("PASSITON_STATE_DIR", "").strip() or ".passiton")
        database_url = env.get("DATABASE_URL", "").strip()
        if database_url:
            try:
                check_url(database_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        try:
            host, port = parse_listen(env.get("BRIDGE_LISTEN", "").strip() or DEFAULT_LISTEN)
        except ConfigError as exc:
            raise ConfigError(f"BRIDGE_LISTEN: {exc}") from None
        retry = RetryPolicy(
            initial=env_float(env, "BRIDGE_RETRY_INITIAL_SECONDS", 1.0, minimum=0.001),
            max_delay=env_float(env, "BRIDGE_RETRY_MAX_DELAY_SECONDS", 300.0, minimum=0.001),
            max_age_seconds=env_float(
                env, "BRIDGE_DELIVERY_MAX_AGE_SECONDS", 6 * 3600.0, minimum=1
            ),
        )
        channels = ChannelsConfig.from_env(env)
        return cls(
            database_url=database_url,
            webhook_token=env.get("BRIDGE_WEBHOOK_TOKEN", "").strip(),
            retention_days=env_int(env, "RETENTION_DAYS", 90, minimum=1),
            state_dir=state_dir,
            listen_host=host,
            listen_port=port,
            max_body_bytes=env_int(env, "BRIDGE_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024),
            header_timeout_seconds=env_float(
                env, "BRIDGE_HEADER_TIMEOUT_SECONDS", 10.0, minimum=0.1
            ),
            body_timeout_seconds=env_float(env, "BRIDGE_BODY_TIMEOUT_SECONDS", 10.0, minimum=0.1),
            auto_migrate=env_bool(env, "BRIDGE_AUTO_MIGRATE", True),
            db_pool_size=env_int(env, "BRIDGE_DB_POOL_SIZE", 10, minimum=1),
            cooldown_seconds=env_float(env, "BRIDGE_COOLDOWN_SECONDS", 1800.0),
            flap_cycles=env_int(env, "BRIDGE_FLAP_CYCLES", 4, minimum=2),
            flap_window_seconds=env_float(env, "BRIDGE_FLAP_WINDOW_SECONDS", 3600.0, minimum=1),
            flap_settle_seconds=env_float(env, "BRIDGE_FLAP_SETTLE_SECONDS", 1800.0, minimum=1),
            deadman_after_seconds=env_float(env, "BRIDGE_DEADMAN_AFTER_SECONDS", 600.0),
            delivery_concurrency=env_int(env, "BRIDGE_DELIVERY_CONCURRENCY", 4, minimum=1),
            delivery_timeout_seconds=env_float(
                env, "BRIDGE_DELIVERY_TIMEOUT_SECONDS", 30.0, minimum=1
            ),
            retry=retry,
            rate_limits=parse_rate_limits(env.get("BRIDGE_RATE_LIMITS", "")),
            # parsed and checked once, with the channels' URLs
            prometheus_url=channels.prometheus_url or "http://127.0.0.1:9090",
            alertmanager_url=channels.alertmanager_url or "http://127.0.0.1:9093",
            rollup_interval_seconds=env_float(env, "BRIDGE_ROLLUP_INTERVAL_SECONDS", 300.0),
            channels=channels,
            console_secret=env.get("BRIDGE_CONSOLE_SECRET", "").strip(),
            console_session_seconds=env_float(
                env, "BRIDGE_CONSOLE_SESSION_SECONDS", 12 * 3600.0, minimum=60
            ),
        )
