"""Reading typed settings from an environment mapping, with errors that name the variable.

Both services' configuration objects are built with these at start-up, nowhere else.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """An environment variable has a value the service cannot use."""


def env_float(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"{name} must be a finite number of at least {minimum}, got {raw!r}")
    return value


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def env_bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def env_csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6); an empty host means every address."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"listen address must be HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def listen_argument(value: str) -> tuple[str, int]:
    """``parse_listen`` as an argparse ``type=``."""
    try:
        return parse_listen(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class EnvReader:
    """Optional, required, URL and list variables of one environment; errors name the variable."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __call__(self, name: str) -> str | None:
        value = self._env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def required(self, name: str, because: str) -> str:
        value = self(name)
        if value is None:
            raise ConfigError(f"{name} is required when {because}")
        return value

    def url(self, name: str, default: str | None = None) -> str | None:
        value = self(name)
        if value is None:
            return default
        check_url(name, value)
        return value.rstrip("/") if name != "SLACK_WEBHOOK_URL" else value

    def list(self, name: str) -> tuple[str, ...]:
        value = self(name) or ""
        return tuple(part for part in re.split(r"[,;\s]+", value) if part)


def check_url(name: str, value: str) -> None:
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ConfigError(f"{name} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL with a host, got {_shown(value)!r}")


def _shown(value: str) -> str:
    """A URL for an error message, without anything that may be a credential."""
    try:
        parts = urlsplit(value)
    except ValueError:
        return "<unparseable>"
    return f"{parts.scheme}://{parts.hostname or ''}/…" if parts.scheme else value[:20]
