"""Reading typed settings from an environment mapping, with errors that name the variable.

Both services' configuration objects are built with these at start-up, nowhere else. Every
variable is declared in ``passiton_common.variables``; ``read_int(env, "NAME")`` and the other
``read_*`` functions take its default and bounds from there.
"""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TypeVar, cast
from urllib.parse import urlsplit

from passiton_common.variables import (
    MIN_TOKEN_LENGTH,
    SECRET_NAMES,
    TOKEN_NAMES,
    Default,
    Kind,
    Variable,
    variable,
)

__all__ = [
    "MIN_TOKEN_LENGTH",
    "SECRET_NAMES",
    "TOKEN_NAMES",
    "ConfigError",
    "EnvReader",
    "check_url",
    "env_bool",
    "env_csv",
    "env_float",
    "env_int",
    "listen_argument",
    "parse_listen",
    "read_bool",
    "read_choice",
    "read_csv",
    "read_float",
    "read_int",
    "read_listen",
    "read_secrets",
    "read_text",
]


_N = TypeVar("_N", int, float)


class ConfigError(ValueError):
    """An environment variable has a value the service cannot use."""


# Secrets (each can also be given as a file, ``NAME_FILE``: Docker and Kubernetes secrets; none is
# ever printed) and the shared tokens (too short to resist guessing is refused at start-up) are
# marked as such in passiton_common.variables.


def read_secrets(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with every ``NAME_FILE`` of a secret replaced by ``NAME`` (the file's text, without
    its trailing newline), and tokens shorter than MIN_TOKEN_LENGTH refused.

    Errors name the variable and the file, never a secret's value. Idempotent: the result has no
    ``NAME_FILE`` left for a secret, so services may call it on what they were given.
    """
    out = dict(env)
    for name in SECRET_NAMES:
        path = out.pop(f"{name}_FILE", "").strip()
        if not path:
            continue
        if out.get(name, "").strip():
            raise ConfigError(f"set {name} or {name}_FILE, not both")
        try:
            out[name] = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise ConfigError(f"{name}_FILE: cannot read {path}: {reason}") from None
    for name in TOKEN_NAMES:
        value = out.get(name, "").strip()
        if value and len(value) < MIN_TOKEN_LENGTH:
            raise ConfigError(
                f"{name} is {len(value)} characters long; use at least {MIN_TOKEN_LENGTH}"
                " random characters (for example: python -c 'import secrets;"
                " print(secrets.token_urlsafe(32))')"
            )
    return out


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


def _declared(name: str, *kinds: Kind) -> Variable:
    declared = variable(name)
    if declared.kind not in kinds:
        raise TypeError(f"{name} is declared as {declared.kind}, not read as {' or '.join(kinds)}")
    return declared


def read_text(env: Mapping[str, str], name: str) -> str:
    """A declared text variable, stripped; its default (or ``""``) when unset or empty."""
    declared = _declared(name, "text")
    return env.get(name, "").strip() or cast(str, declared.default or "")


def read_int(env: Mapping[str, str], name: str) -> int:
    declared = _declared(name, "int")
    value = env_int(env, name, cast(int, declared.default), minimum=int(declared.minimum or 0))
    return _at_most(declared, value, env)


def read_float(env: Mapping[str, str], name: str) -> float:
    declared = _declared(name, "float")
    value = env_float(env, name, cast(float, declared.default), minimum=declared.minimum or 0.0)
    return _at_most(declared, value, env)


def _at_most(declared: Variable, value: _N, env: Mapping[str, str]) -> _N:
    if declared.maximum is not None and value > declared.maximum:
        raise ConfigError(
            f"{declared.name} must be at most {declared.maximum:g}, got {env[declared.name]!r}"
        )
    return value


def read_bool(env: Mapping[str, str], name: str) -> bool:
    return env_bool(env, name, cast(bool, _declared(name, "bool").default))


def read_csv(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    _declared(name, "csv")
    return env_csv(env, name)


def read_listen(env: Mapping[str, str], name: str) -> tuple[str, int]:
    """A declared ``HOST:PORT`` variable; errors name the variable."""
    declared = _declared(name, "listen")
    try:
        return parse_listen(env.get(name, "").strip() or cast(str, declared.default))
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def read_choice(env: Mapping[str, str], name: str) -> str:
    """One of a declared variable's choices, lower-cased; its default when unset."""
    declared = _declared(name, "choice")
    raw = env.get(name, "").strip()
    value = raw.lower() or cast(str, declared.default)
    if value not in declared.choices:
        *others, last = declared.choices
        raise ConfigError(f"{name} must be {', '.join(others)} or {last}, got {raw!r}")
    return value


class EnvReader:
    """Optional, required, URL and list variables of one environment; errors name the variable.

    ``get(name)`` is what is set (``None`` when unset or empty: whether a channel is configured);
    ``get.value(name)`` and ``get.url(name)`` fall back to the declared default.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __call__(self, name: str) -> str | None:
        variable(name)  # declared
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

    def value(self, name: str) -> str | None:
        """What is set, or the declared default."""
        value = self(name)
        return value if value is not None else _text_default(variable(name).default)

    def choice(self, name: str) -> str:
        """One of the declared choices, lower-cased, or the declared default."""
        return read_choice(self._env, name)

    def url(self, name: str) -> str | None:
        """A checked http(s) URL (without a trailing slash but Slack's), or the declared default."""
        declared = _declared(name, "url")
        value = self(name)
        if value is None:
            return _text_default(declared.default)
        check_url(name, value)
        return value.rstrip("/") if name != "SLACK_WEBHOOK_URL" else value

    def urls(self, name: str) -> tuple[str, ...]:
        """Comma-separated checked URLs (each as ``url`` gives it), or the declared default."""
        declared = _declared(name, "url")
        value = self(name) or _text_default(declared.default) or ""
        parts = tuple(part.strip() for part in value.split(",") if part.strip())
        for part in parts:
            check_url(name, part)
        return tuple(part.rstrip("/") for part in parts)

    def list(self, name: str) -> tuple[str, ...]:
        value = self(name) or ""
        return tuple(part for part in re.split(r"[,;\s]+", value) if part)


def _text_default(default: Default) -> str | None:
    return None if default is None else str(default)


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
