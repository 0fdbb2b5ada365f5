"""The bridge's configuration, parsed once from the environment at start-up."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.channels.config import ChannelsConfig
from bridge.oidc_config import OidcConfig, read_oidc
from bridge.oncall.config import OncallConfig, OncallConfigError, load_oncall
from bridge.oncall.working_hours import WorkingHours, parse_working_hours
from bridge.retry import RetryPolicy
from bridge.storage.connection import check_url
from passiton_common.proxies import parse_networks
from passiton_common.settings import (
    ConfigError,
    parse_listen,
    read_bool,
    read_csv,
    read_float,
    read_int,
    read_listen,
    read_secrets,
    read_text,
)
from passiton_common.settings import check_url as settings_check_url
from passiton_common.variables import default_of

DEFAULT_LISTEN: str = default_of("BRIDGE_LISTEN")
_LISTEN = parse_listen(DEFAULT_LISTEN)
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
    retention_days: int = default_of("RETENTION_DAYS")
    state_dir: Path = Path(default_of("PASSITON_STATE_DIR"))
    listen_host: str = _LISTEN[0]
    listen_port: int = _LISTEN[1]
    max_body_bytes: int = default_of("BRIDGE_MAX_BODY_BYTES")
    # A connection without a complete request head (or idle) this long is closed; a body not
    # received in body_timeout_seconds is answered 503 (Alertmanager retries it, a stalled
    # sender no longer holds the handler).
    header_timeout_seconds: float = default_of("BRIDGE_HEADER_TIMEOUT_SECONDS")
    body_timeout_seconds: float = default_of("BRIDGE_BODY_TIMEOUT_SECONDS")
    auto_migrate: bool = default_of("BRIDGE_AUTO_MIGRATE")
    db_pool_size: int = default_of("BRIDGE_DB_POOL_SIZE")
    # Alert fatigue: no repeat notification of the same alert on a channel within the cooldown
    # unless its severity rose; N fire/resolve cycles within the window mark it flapping, and it
    # stays quiet until no change for flap_settle_seconds.
    cooldown_seconds: float = default_of("BRIDGE_COOLDOWN_SECONDS")
    flap_cycles: int = default_of("BRIDGE_FLAP_CYCLES")
    flap_window_seconds: float = default_of("BRIDGE_FLAP_WINDOW_SECONDS")
    flap_settle_seconds: float = default_of("BRIDGE_FLAP_SETTLE_SECONDS")
    # Dead man's switch: 0 disables it.
    deadman_after_seconds: float = default_of("BRIDGE_DEADMAN_AFTER_SECONDS")
    # Routing reload, dead man's switch, settled flaps, queue gauges, daily retention.
    maintenance_interval_seconds: float = 5.0
    # Delivery workers, per channel; the lease bounds how long a crashed bridge holds a claim.
    delivery_concurrency: int = default_of("BRIDGE_DELIVERY_CONCURRENCY")
    delivery_poll_seconds: float = 1.0
    delivery_timeout_seconds: float = default_of("BRIDGE_DELIVERY_TIMEOUT_SECONDS")
    delivery_lease_seconds: float = 120.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Per destination (channel + recipients) and replica: at most N sends per window; more wait.
    rate_limits: dict[str, tuple[int, float]] = field(default_factory=dict)
    prometheus_url: str = default_of("PROMETHEUS_URL")
    # The hourly history rollup (bridge/rollup.py) checks this often for completed hours; 0: off.
    rollup_interval_seconds: float = default_of("BRIDGE_ROLLUP_INTERVAL_SECONDS")
    # The first Alertmanager (links, doctor, the console's silences); the reconciler reads
    # every one of alertmanager_urls (an HA cluster), empty meaning just this one.
    alertmanager_url: str = default_of("ALERTMANAGER_URL")
    alertmanager_urls: tuple[str, ...] = ()
    # How often the reconciler (bridge/reconcile.py) reads Alertmanager's alerts; 0: off.
    reconcile_interval_seconds: float = default_of("BRIDGE_RECONCILE_INTERVAL_SECONDS")
    # ... and resolves what vanished only once every Alertmanager has been up this long.
    reconcile_min_uptime_seconds: float = default_of("BRIDGE_RECONCILE_MIN_UPTIME_SECONDS")
    # A firing alert joins a related open incident whose last alert is at most this old.
    incident_window_seconds: float = default_of("BRIDGE_INCIDENT_WINDOW_SECONDS")
    channels: ChannelsConfig | Any = None
    # The console's session signing key; empty: a random key kept in bridge_state.
    console_secret: str = field(default="", repr=False)
    console_session_seconds: float = default_of("BRIDGE_CONSOLE_SESSION_SECONDS")
    # https: the console's cookie is Secure and __Host- even behind a TLS-terminating proxy
    console_public_url: str = ""
    # proxies in front of the console whose X-Forwarded-For names the client (login throttle)
    console_trusted_proxies: tuple[str, ...] = ()
    # what the review counts as working hours (pages outside them, per person)
    console_working_hours: WorkingHours = field(
        default_factory=lambda: parse_working_hours(default_of("BRIDGE_CONSOLE_WORKING_HOURS"))
    )
    # the console's OpenID Connect sign-in (OIDC_*); None: passwords only
    oidc: OidcConfig | None = None
    # The public listener (Twilio, Slack, PagerDuty callbacks, e-mail links); None: off.
    public_listen: tuple[str, int] | None = None
    public_url: str = ""
    # connections the public listener holds at once (checked against RLIMIT_NOFILE at start-up)
    public_max_connections: int = default_of("BRIDGE_PUBLIC_MAX_CONNECTIONS")
    # the public listener's rate from everyone together; past it a request waits its turn up to
    # public_max_wait_seconds, else is answered 503 (passiton_common/admission.py)
    public_rate_per_second: int = default_of("BRIDGE_PUBLIC_RATE_PER_SECOND")
    public_max_wait_seconds: float = default_of("BRIDGE_PUBLIC_MAX_WAIT_SECONDS")
    # ONCALL_CONFIG and what it holds, checked at start-up; None: no on-call file
    oncall_config: Path | None = None
    oncall: OncallConfig | None = field(default=None, repr=False, compare=False)
    # PAGERDUTY_WEBHOOK_SECRET: signs PagerDuty's V3 webhooks (bridge/public/pagerduty.py)
    pagerduty_webhook_secret: str = field(default="", repr=False)

    @property
    def alertmanager_api_urls(self) -> tuple[str, ...]:
        """Every Alertmanager the reconciler reads."""
        return self.alertmanager_urls or (self.alertmanager_url,)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> BridgeConfig:

        env = read_secrets(env)
        state_dir = Path(read_text(env, "PASSITON_STATE_DIR"))
        database_url = read_text(env, "DATABASE_URL")
        if database_url:
            try:
                check_url(database_url)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
        host, port = read_listen(env, "BRIDGE_LISTEN")
        retry = RetryPolicy(
            initial=read_float(env, "BRIDGE_RETRY_INITIAL_SECONDS"),
            max_delay=read_float(env, "BRIDGE_RETRY_MAX_DELAY_SECONDS"),
            max_age_seconds=read_float(env, "BRIDGE_DELIVERY_MAX_AGE_SECONDS"),
        )
        channels = ChannelsConfig.from_env(env)
        oncall_config, oncall = read_oncall(env)
        return cls(
            database_url=database_url,
            webhook_token=read_text(env, "BRIDGE_WEBHOOK_TOKEN"),
            retention_days=read_int(env, "RETENTION_DAYS"),
            state_dir=state_dir,
            listen_host=host,
            listen_port=port,
            max_body_bytes=read_int(env, "BRIDGE_MAX_BODY_BYTES"),
            header_timeout_seconds=read_float(env, "BRIDGE_HEADER_TIMEOUT_SECONDS"),
            body_timeout_seconds=read_float(env, "BRIDGE_BODY_TIMEOUT_SECONDS"),
            auto_migrate=read_bool(env, "BRIDGE_AUTO_MIGRATE"),
            db_pool_size=read_int(env, "BRIDGE_DB_POOL_SIZE"),
            cooldown_seconds=read_float(env, "BRIDGE_COOLDOWN_SECONDS"),
            flap_cycles=read_int(env, "BRIDGE_FLAP_CYCLES"),
            flap_window_seconds=read_float(env, "BRIDGE_FLAP_WINDOW_SECONDS"),
            flap_settle_seconds=read_float(env, "BRIDGE_FLAP_SETTLE_SECONDS"),
            deadman_after_seconds=read_float(env, "BRIDGE_DEADMAN_AFTER_SECONDS"),
            delivery_concurrency=read_int(env, "BRIDGE_DELIVERY_CONCURRENCY"),
            delivery_timeout_seconds=read_float(env, "BRIDGE_DELIVERY_TIMEOUT_SECONDS"),
            retry=retry,
            rate_limits=parse_rate_limits(read_text(env, "BRIDGE_RATE_LIMITS")),
            # parsed and checked once, with the channels' URLs (their defaults included)
            prometheus_url=channels.prometheus_url or default_of("PROMETHEUS_URL"),
            alertmanager_url=channels.alertmanager_url or default_of("ALERTMANAGER_URL"),
            # one: just alertmanager_url (the default's form), several: an HA cluster
            alertmanager_urls=urls if len(urls := channels.alertmanager_urls) > 1 else (),
            reconcile_interval_seconds=read_float(env, "BRIDGE_RECONCILE_INTERVAL_SECONDS"),
            reconcile_min_uptime_seconds=read_float(env, "BRIDGE_RECONCILE_MIN_UPTIME_SECONDS"),
            incident_window_seconds=read_float(env, "BRIDGE_INCIDENT_WINDOW_SECONDS"),
            rollup_interval_seconds=read_float(env, "BRIDGE_ROLLUP_INTERVAL_SECONDS"),
            channels=channels,
            console_secret=read_text(env, "BRIDGE_CONSOLE_SECRET"),
            console_session_seconds=read_float(env, "BRIDGE_CONSOLE_SESSION_SECONDS"),
            console_public_url=_console_public_url(env),
            console_trusted_proxies=_console_proxies(env),
            console_working_hours=_working_hours(env),
            oidc=read_oidc(env),
            public_listen=_public_listen(env),
            public_url=_public_url(env),
            public_max_connections=read_int(env, "BRIDGE_PUBLIC_MAX_CONNECTIONS"),
            public_rate_per_second=read_int(env, "BRIDGE_PUBLIC_RATE_PER_SECOND"),
            public_max_wait_seconds=read_float(env, "BRIDGE_PUBLIC_MAX_WAIT_SECONDS"),
            oncall_config=oncall_config,
            oncall=oncall,
            pagerduty_webhook_secret=read_text(env, "PAGERDUTY_WEBHOOK_SECRET"),
        )


def _working_hours(env: Mapping[str, str]) -> WorkingHours:
    try:
        return parse_working_hours(read_text(env, "BRIDGE_CONSOLE_WORKING_HOURS"))
    except ValueError as exc:
        raise ConfigError(f"BRIDGE_CONSOLE_WORKING_HOURS: {exc}") from None


def read_oncall(env: Mapping[str, str]) -> tuple[Path | None, OncallConfig | None]:
    """ONCALL_CONFIG's path and its checked contents; ConfigError naming every error."""
    value = read_text(env, "ONCALL_CONFIG")
    if not value:
        return None, None
    path = Path(value)
    try:
        return path, load_oncall(path)
    except OncallConfigError as exc:
        raise ConfigError(
            f"ONCALL_CONFIG: {len(exc.errors)} error(s) in the on-call file:\n  "
            + "\n  ".join(exc.errors)
        ) from None


def _console_proxies(env: Mapping[str, str]) -> tuple[str, ...]:
    values = read_csv(env, "BRIDGE_CONSOLE_TRUSTED_PROXIES")
    parse_networks(values, "BRIDGE_CONSOLE_TRUSTED_PROXIES")  # refused at start-up if invalid
    return values


def _console_public_url(env: Mapping[str, str]) -> str:
    value = read_text(env, "BRIDGE_CONSOLE_PUBLIC_URL")
    if value:
        settings_check_url("BRIDGE_CONSOLE_PUBLIC_URL", value)
    return value


def _public_listen(env: Mapping[str, str]) -> tuple[str, int] | None:
    value = read_text(env, "BRIDGE_PUBLIC_LISTEN")
    if not value:
        return None
    try:
        return parse_listen(value)
    except ConfigError as exc:
        raise ConfigError(f"BRIDGE_PUBLIC_LISTEN: {exc}") from None


def _public_url(env: Mapping[str, str]) -> str:
    value = read_text(env, "BRIDGE_PUBLIC_URL").rstrip("/")
    if value:
        settings_check_url("BRIDGE_PUBLIC_URL", value)
    return value
