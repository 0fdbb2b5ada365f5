"""Exporter configuration: parsed once from the environment at start-up, then passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.edge import parse_networks
from passiton_common.settings import (
    ConfigError,
    env_csv,
    env_float,
    env_int,
    parse_listen,
    read_secrets,
)


@dataclass(frozen=True)
class LabelBounds:
    """How many distinct values each open-ended label may take before folding to 'other'."""

    organization_id: int = 1000
    widget_id: int = 2000
    route: int = 200


@dataclass(frozen=True)
class ExporterConfig:
    listen_host: str = "0.0.0.0"
    listen_port: int = 9820
    # The public listener: beacon, beacon.js, Stripe webhook, health. The one above (internal)
    # serves /v1/events, /metrics and the OpenAPI document.
    public_listen_host: str = "0.0.0.0"
    public_listen_port: int = 9822
    ingest_token: str = field(default="", repr=False)
    # An explicit local development run (``exporter --dev``): /v1/events without a token.
    development: bool = False
    beacon_secret: str = field(default="", repr=False)
    # proxies whose X-Forwarded-For is believed (ipaddress networks), EXPORTER_TRUSTED_PROXIES
    trusted_proxies: tuple = ()
    stripe_webhook_secret: str = field(default="", repr=False)
    cors_origins: tuple[str, ...] = ()
    probe_database_url: str = field(default="", repr=False)
    probe_interval_seconds: float = 15.0
    widget_timeout_seconds: float = 5.0
    max_body_bytes: int = 1_048_576
    header_timeout_seconds: float = 10.0
    body_timeout_seconds: float = 10.0
    max_batch_events: int = 1000
    max_string_length: int = 2048
    beacon_rate_per_minute: int = 120  # per client address
    beacon_key_rate_per_minute: int = 3000  # per widget key
    beacon_max_body_bytes: int = 16_384
    beacon_max_events: int = 20
    beacon_text_length: int = 256  # free text of a beacon event is cut to this first
    beacon_max_clients: int = 10_000
    stripe_dedupe_ids: int = 100_000
    source_window_seconds: int = 60
    source_top_n: int = 10
    source_capacity: int = 1000
    bounds: LabelBounds = LabelBounds()
    # a label value unseen this long is forgotten and its series removed
    label_idle_seconds: float = 3600.0
    max_series_per_metric: int = 20_000

    def check_startable(self) -> None:
        """Refuse an exporter whose /v1/events would take anything from anyone."""
        if not self.ingest_token and not self.development:
            raise ConfigError(
                "EXPORTER_INGEST_TOKEN must be set (applications send it to /v1/events); "
                "`passiton-monitoring exporter --dev` runs without one for local development"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExporterConfig:
        env = read_secrets(env)
        host, port = _listen(env, "EXPORTER_LISTEN", "0.0.0.0:9820")
        public_host, public_port = _listen(env, "EXPORTER_PUBLIC_LISTEN", "0.0.0.0:9822")
        return cls(
            listen_host=host,
            listen_port=port,
            public_listen_host=public_host,
            public_listen_port=public_port,
            ingest_token=env.get("EXPORTER_INGEST_TOKEN", ""),
            beacon_secret=env.get("EXPORTER_BEACON_SECRET", ""),
            trusted_proxies=parse_networks(env_csv(env, "EXPORTER_TRUSTED_PROXIES")),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
            cors_origins=env_csv(env, "EXPORTER_CORS_ORIGINS"),
            probe_database_url=env.get("PROBE_DATABASE_URL", ""),
            probe_interval_seconds=env_float(env, "PROBE_INTERVAL_SECONDS", 15.0, minimum=0.001),
            widget_timeout_seconds=env_float(env, "WIDGET_TIMEOUT_SECONDS", 5.0, minimum=0.001),
            max_body_bytes=env_int(env, "EXPORTER_MAX_BODY_BYTES", 1_048_576, minimum=1),
            header_timeout_seconds=env_float(
                env, "EXPORTER_HEADER_TIMEOUT_SECONDS", 10.0, minimum=0.001
            ),
            body_timeout_seconds=env_float(
                env, "EXPORTER_BODY_TIMEOUT_SECONDS", 10.0, minimum=0.001
            ),
            max_batch_events=env_int(env, "EXPORTER_MAX_BATCH_EVENTS", 1000, minimum=1),
            beacon_rate_per_minute=env_int(env, "EXPORTER_BEACON_RATE_PER_MINUTE", 120, minimum=1),
            beacon_key_rate_per_minute=env_int(
                env, "EXPORTER_BEACON_KEY_RATE_PER_MINUTE", 3000, minimum=1
            ),
            label_idle_seconds=env_float(env, "EXPORTER_LABEL_IDLE_SECONDS", 3600.0, minimum=1),
            max_series_per_metric=env_int(
                env, "EXPORTER_MAX_SERIES_PER_METRIC", 20_000, minimum=10
            ),
            bounds=LabelBounds(
                organization_id=env_int(env, "EXPORTER_MAX_ORGANIZATIONS", 1000, minimum=1),
                widget_id=env_int(env, "EXPORTER_MAX_WIDGETS", 2000, minimum=1),
                route=env_int(env, "EXPORTER_MAX_ROUTES", 200, minimum=1),
            ),
        )


def _listen(env: Mapping[str, str], name: str, default: str) -> tuple[str, int]:
    try:
        return parse_listen(env.get(name, "").strip() or default)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None
