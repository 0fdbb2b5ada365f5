"""Prometheus, Alertmanager and blackbox configs rendered from the repository's files.

The one source of truth stays ``prometheus/`` and ``alertmanager/``: the default ``localhost`` ports
are replaced by the stack's addresses, rule files become absolute paths, the bridge's URL and
token file are filled in. ``up`` and ``deploy/render_compose.py`` both render with this module.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

import yaml

from passiton_monitoring.stack.ports import TOKEN_FILE, Addresses, StackError, Timing

# A default address in the repository's configs: what every substitution looks for.
_DEFAULT_ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):(9820|9821|9090|9093|9115)\b")
_ROLE_BY_DEFAULT_PORT = {
    "9820": "exporter",
    "9821": "bridge",
    "9090": "prometheus",
    "9093": "alertmanager",
    "9115": "blackbox",
}


def duration(seconds: float) -> str:
    """A Prometheus duration string."""
    if seconds == 0:
        return "0s"
    if seconds >= 1 and float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{round(seconds * 1000)}ms"


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus/Alertmanager duration such as ``1h30m`` or ``500ms``."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)", text.strip())
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise StackError(f"not a duration: {text!r}")
    return sum(float(n) * units[u] for n, u in parts)


# --- configuration rendering ------------------------------------------------------------------


def _substitute(text: str, addresses: Addresses) -> str:
    return _DEFAULT_ADDRESS.sub(
        lambda m: addresses.all_for(_ROLE_BY_DEFAULT_PORT[m.group(1)])[0], text
    )


def _rewrite(node: Any, addresses: Addresses, key: str | None = None) -> Any:
    """Replace default addresses everywhere; in a ``targets`` list an HA role expands to all."""
    if isinstance(node, dict):
        return {k: _rewrite(v, addresses, k) for k, v in node.items()}
    if isinstance(node, list):
        if key == "targets":
            out: list[Any] = []
            for item in node:
                match = _DEFAULT_ADDRESS.fullmatch(item) if isinstance(item, str) else None
                if match:
                    role = _ROLE_BY_DEFAULT_PORT[match.group(1)]
                    out.extend(a for a in addresses.all_for(role) if a not in out)
                else:
                    out.append(_rewrite(item, addresses))
            return out
        return [_rewrite(item, addresses) for item in node]
    if isinstance(node, str):
        return _substitute(node, addresses)
    return node


def render_prometheus(
    source: Path, addresses: Addresses, timing: Timing | None = None
) -> dict[str, Any]:
    """``prometheus.yml`` for this stack: ports substituted, rule files absolute."""
    config = _rewrite(_load_yaml(source), addresses)
    base = source.parent.resolve()
    config["rule_files"] = [
        pattern if os.path.isabs(pattern) else str(base / pattern)
        for pattern in config.get("rule_files") or []
    ]
    if timing is not None:
        glob = config.setdefault("global", {})
        glob["scrape_interval"] = duration(timing.scrape_seconds)
        glob["scrape_timeout"] = duration(timing.scrape_seconds)
        glob["evaluation_interval"] = duration(timing.evaluation_seconds)
        for job in config.get("scrape_configs") or []:
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
    return config


def _shorten(route: dict[str, Any], name: str, seconds: int | None, *, root: bool) -> None:
    if seconds is None:
        return
    if name in route:
        route[name] = duration(min(parse_duration(str(route[name])), seconds))
    elif root:
        route[name] = duration(seconds)


def _fast_routes(route: dict[str, Any], timing: Timing, *, root: bool) -> None:
    _shorten(route, "group_wait", timing.group_wait_seconds, root=root)
    _shorten(route, "group_interval", timing.group_interval_seconds, root=root)
    _shorten(route, "repeat_interval", timing.repeat_interval_seconds, root=root)
    for child in route.get("routes") or []:
        _fast_routes(child, timing, root=False)


def render_alertmanager(
    source: Path,
    addresses: Addresses,
    token_file: Path,
    timing: Timing | None = None,
) -> dict[str, Any]:
    """``alertmanager.yml`` for this stack: the bridge's address and token file filled in."""
    config = _rewrite(_load_yaml(source), addresses)
    for receiver in config.get("receivers") or []:
        for webhook in receiver.get("webhook_configs") or []:
            http = webhook.get("http_config") or {}
            if "authorization" in http:
                http["authorization"].pop("credentials", None)
                http["authorization"]["credentials_file"] = str(token_file)
            if "basic_auth" in http:
                http["basic_auth"].pop("password", None)
                http["basic_auth"]["password_file"] = str(token_file)
    if timing is not None and isinstance(config.get("route"), dict):
        _fast_routes(config["route"], timing, root=True)
    return config


def render_blackbox(source: Path) -> dict[str, Any]:
    return _load_yaml(source)


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except FileNotFoundError:
        raise StackError(f"configuration file not found: {path}") from None
    if not isinstance(data, dict):
        raise StackError(f"{path} is not a YAML mapping")
    return data


def write_yaml(path: Path, data: dict[str, Any], source: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# Rendered by passiton-monitoring from {source}; edit that file, not this one.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def ensure_token_file(state_dir: Path, token: str) -> tuple[str, Path]:
    """The bridge's webhook token in a 0600 file: ``token`` if given, else kept or generated."""
    path = state_dir / TOKEN_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    if not token:
        token = path.read_text(encoding="utf-8").strip() if path.exists() else ""
        token = token or secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token)
    return token, path
