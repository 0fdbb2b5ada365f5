"""Exporter configuration: parsed once from the environment at start-up, then passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from exporter.edge import parse_networks
from passiton_common.settings import (
    ConfigError,
    parse_listen,
    read_csv,
    read_float,
    read_int,
    read_listen,
    read_secrets,
    read_text,
)
from passiton_common.variables import default_of

# Field defaults come from the declarations in passiton_common/variables.py.
_LISTEN = parse_listen(default_of("EXPORTER_LISTEN"))
_PUBLIC_LISTEN = parse_listen(default_of("EXPORTER_PUBLIC_LISTEN"))


@dataclass(frozen=True)
class LabelBounds:
    """How many distinct values each open-ended label may take before folding to 'other'."""

    organization_id: int = default_of("EXPORTER_MAX_ORGANIZATIONS")
    widget_id: int = default_of("EXPORTER_MAX_WIDGETS")
    route: int = default_of("EXPORTER_MAX_ROUTES")


@dataclass(frozen=True)
class ExporterConfig:
    listen_host: str = _LISTEN[0]
    listen_port: int = _LISTEN[1]
    # The public listener: beacon, beacon.js, Stripe webhook, health. The one above (internal)
    # serves /v1/events, /metrics and the OpenAPI document.
    public_listen_host: str = _PUBLIC_LISTEN[0]
    public_listen_port: int = _PUBLIC_LISTEN[1]
    ingest_token: str = field(default="", repr=False)
    # An explicit local development run (``exporter --dev``): /v1/events without a token.
    development: bool = False
    beacon_secret: str = field(default="", repr=False)
    # proxies whose X-Forwarded-For is believed (ipaddress networks), EXPORTER_TRUSTED_PROXIES
    trusted_proxies: tuple = ()
    stripe_webhook_secret: str = field(default="", repr=False)
    cors_origins: tuple[str, ...] = ()
    probe_database_url: str = field(default="", repr=False)
    probe_interval_seconds: float = default_of("PROBE_INTERVAL_SECONDS")
    widget_timeout_seconds: float = default_of("WIDGET_TIMEOUT_SECONDS")
    max_body_bytes: int = default_of("EXPORTER_MAX_BODY_BYTES")
    header_timeout_seconds: float = default_of("EXPORTER_HEADER_TIMEOUT_SECONDS")
    body_timeout_seconds: float = default_of("EXPORTER_BODY_TIMEOUT_SECONDS")
    # connections the public listener holds at once (checked against RLIMIT_NOFILE at start-up)
    public_max_connections: int = default_of("EXPORTER_PUBLIC_MAX_CONNECTIONS")
    # requests a second the public listener serves from everyone together; a request past it
    # waits its turn up to public_max_wait_seconds, else is answered 503 (handlers/admission.py)
    public_rate_per_second: int = default_of("EXPORTER_PUBLIC_RATE_PER_SECOND")
    public_max_wait_seconds: float = default_of("EXPORTER_PUBLIC_MAX_WAIT_SECONDS")
    max_batch_events: int = default_of("EXPORTER_MAX_BATCH_EVENTS")
    max_string_length: int = 2048
    # per client address, per widget key
    beacon_rate_per_minute: int = default_of("EXPORTER_BEACON_RATE_PER_MINUTE")
    beacon_key_rate_per_minute: int = default_of("EXPORTER_BEACON_KEY_RATE_PER_MINUTE")
    # per client address on /v1/stripe/webhook, before the body is read
    stripe_rate_per_minute: int = default_of("EXPORTER_STRIPE_RATE_PER_MINUTE")
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
    label_idle_seconds: float = default_of("EXPORTER_LABEL_IDLE_SECONDS")
    max_series_per_metric: int = default_of("EXPORTER_MAX_SERIES_PER_METRIC")

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
        host, port = read_listen(env, "EXPORTER_LISTEN")
        public_host, public_port = read_listen(env, "EXPORTER_PUBLIC_LISTEN")
        return cls(
            listen_host=host,
            listen_port=port,
            public_listen_host=public_host,
            public_listen_port=public_port,
            ingest_token=read_text(env, "EXPORTER_INGEST_TOKEN"),
            beacon_secret=read_text(env, "EXPORTER_BEACON_SECRET"),
            trusted_proxies=parse_networks(read_csv(env, "EXPORTER_TRUSTED_PROXIES")),
            stripe_webhook_secret=read_text(env, "STRIPE_WEBHOOK_SECRET"),
            cors_origins=read_csv(env, "EXPORTER_CORS_ORIGINS"),
            probe_database_url=read_text(env, "PROBE_DATABASE_URL"),
            probe_interval_seconds=read_float(env, "PROBE_INTERVAL_SECONDS"),
            widget_timeout_seconds=read_float(env, "WIDGET_TIMEOUT_SECONDS"),
            max_body_bytes=read_int(env, "EXPORTER_MAX_BODY_BYTES"),
            header_timeout_seconds=read_float(env, "EXPORTER_HEADER_TIMEOUT_SECONDS"),
            body_timeout_seconds=read_float(env, "EXPORTER_BODY_TIMEOUT_SECONDS"),
            public_max_connections=read_int(env, "EXPORTER_PUBLIC_MAX_CONNECTIONS"),
            public_rate_per_second=read_int(env, "EXPORTER_PUBLIC_RATE_PER_SECOND"),
            public_max_wait_seconds=read_float(env, "EXPORTER_PUBLIC_MAX_WAIT_SECONDS"),
            max_batch_events=read_int(env, "EXPORTER_MAX_BATCH_EVENTS"),
            beacon_rate_per_minute=read_int(env, "EXPORTER_BEACON_RATE_PER_MINUTE"),
            beacon_key_rate_per_minute=read_int(env, "EXPORTER_BEACON_KEY_RATE_PER_MINUTE"),
            stripe_rate_per_minute=read_int(env, "EXPORTER_STRIPE_RATE_PER_MINUTE"),
            label_idle_seconds=read_float(env, "EXPORTER_LABEL_IDLE_SECONDS"),
            max_series_per_metric=read_int(env, "EXPORTER_MAX_SERIES_PER_METRIC"),
            bounds=LabelBounds(
                organization_id=read_int(env, "EXPORTER_MAX_ORGANIZATIONS"),
                widget_id=read_int(env, "EXPORTER_MAX_WIDGETS"),
                route=read_int(env, "EXPORTER_MAX_ROUTES"),
            ),
        )
