"""Exporter configuration: parsed once from the environment at start-up, then passed down."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive finite number, got {raw!r}")
    return value


def _csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


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
        listen = env.get("EXPORTER_LISTEN", "0.0.0.0:9820")
        host, _, port = listen.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"EXPORTER_LISTEN must be HOST:PORT, got {listen!r}")
        return cls(
            listen_host=host or "0.0.0.0",
            listen_port=int(port),
            ingest_token=env.get("EXPORTER_INGEST_TOKEN", ""),
            stripe_webhook_secret=env.get("STRIPE_WEBHOOK_SECRET", ""),
            cors_origins=_csv(env, "EXPORTER_CORS_ORIGINS"),
            probe_database_url=env.get("PROBE_DATABASE_URL", ""),
            probe_interval_seconds=_float(env, "PROBE_INTERVAL_SECONDS", 15.0),
            widget_timeout_seconds=_float(env, "WIDGET_TIMEOUT_SECONDS", 5.0),
            max_body_bytes=_int(env, "EXPORTER_MAX_BODY_BYTES", 1_048_576),
            max_batch_events=_int(env, "EXPORTER_MAX_BATCH_EVENTS", 1000),
            beacon_rate_per_minute=_int(env, "EXPORTER_BEACON_RATE_PER_MINUTE", 120),
            bounds=LabelBounds(
                organization_id=_int(env, "EXPORTER_MAX_ORGANIZATIONS", 1000),
                widget_id=_int(env, "EXPORTER_MAX_WIDGETS", 2000),
                route=_int(env, "EXPORTER_MAX_ROUTES", 200),
            ),
        )
