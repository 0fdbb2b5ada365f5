"""Exporter configuration: parsed once from the environment at start-up, then passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from passiton_common.settings import env_csv, env_float, env_int, parse_listen


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
    ingest_token: str = field(default="", repr=False)
    stripe_webhook_secret: str = field(default="", repr=False)
    cors_origins: tuple[str, ...] = ()
    probe_database_url: str = field(default="", repr=False)
    probe_interval_seconds: float = 15.0
    widget_timeout_seconds: float = 5.0
    max_body_bytes: int = 1_048_576
    max_batch_events: int = 1000
    max_string_length: int = 2048
    beacon_rate_per_minute: int = 120
    beacon_max_clients: int = 10_000
    stripe_dedupe_ids: int = 100_000
    source_window_seconds: int = 60
    source_top_n: int = 10
    source_capacity: int = 1000
    bounds: LabelBounds = LabelBounds()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ExporterConfig:
        try:
            host, port = parse_listen(env.get("EXPORTER_LISTEN", "").strip() or "0.0.0.0:9820")
        except ValueError as exc:
            raise type(exc)(f"EXPORTER_LISTEN: {exc}") from None
        return cls(
            listen_host=host,
            listen_port=port,
            ingest_token=env.get("EXPORTER_INGEST_TOKEN", ""),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
            cors_origins=env_csv(env, "EXPORTER_CORS_ORIGINS"),
            probe_database_url=env.get("PROBE_DATABASE_URL", ""),
            probe_interval_seconds=env_float(env, "PROBE_INTERVAL_SECONDS", 15.0, minimum=0.001),
            widget_timeout_seconds=env_float(env, "WIDGET_TIMEOUT_SECONDS", 5.0, minimum=0.001),
            max_body_bytes=env_int(env, "EXPORTER_MAX_BODY_BYTES", 1_048_576, minimum=1),
            max_batch_events=env_int(env, "EXPORTER_MAX_BATCH_EVENTS", 1000, minimum=1),
            beacon_rate_per_minute=env_int(env, "EXPORTER_BEACON_RATE_PER_MINUTE", 120, minimum=1),
            bounds=LabelBounds(
                organization_id=env_int(env, "EXPORTER_MAX_ORGANIZATIONS", 1000, minimum=1),
                widget_id=env_int(env, "EXPORTER_MAX_WIDGETS", 2000, minimum=1),
                route=env_int(env, "EXPORTER_MAX_ROUTES", 200, minimum=1),
            ),
        )
