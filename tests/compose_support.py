"""Helpers of the Compose tests (tests/test_compose*.py): docker-compose.yml and .env.example
parsed, Compose's variable interpolation, each service's environment, flags, listening port and
mounts, and the configs rendered for Compose (deploy/compose/)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[1]
COMPOSE: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
LONG_RUNNING = (
    "postgres",
    "exporter",
    "bridge",
    "prometheus",
    "alertmanager",
    "blackbox",
    "grafana",
)
OUR_IMAGE = ("migrate", "exporter", "bridge")
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "BRIDGE_WEBHOOK_TOKEN": "hook-token",
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
    "EXPORTER_INGEST_TOKEN": "ingest-token-of-the-compose-test",
}


# --- Compose's variable interpolation ----------------------------------------------------------


def _closing_brace(text: str, start: int) -> int:
    depth = 0
    for i in range(start, len(text)):
        if text.startswith("${", i):
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced ${{ in {text!r}")


def interpolate(text: str, env: dict[str, str]) -> str:
    """``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, nested, ``$$``."""
    out, i = [], 0
    while i < len(text):
        if text.startswith("$$", i):
            out.append("$")
            i += 2
        elif text.startswith("${", i):
            end = _closing_brace(text, i)
            body = text[i + 2 : end]
            name, op, arg = re.fullmatch(r"([A-Za-z_]\w*)(?:(:?[-?])(.*))?", body, re.S).groups()
            value = env.get(name)
            if op in (":-", "-"):
                empty = value is None or (op == ":-" and value == "")
                out.append(interpolate(arg, env) if empty else value)
            elif op in (":?", "?"):
                if value is None or (op == ":?" and value == ""):
                    raise LookupError(f"{name} is required: {arg}")
                out.append(value)
            else:
                out.append(value or "")
            i = end + 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def dotenv(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


ENV_EXAMPLE = dotenv(REPO / ".env.example")
ENV = {**ENV_EXAMPLE, **REQUIRED_SECRETS}


def environment(service: str) -> dict[str, str]:
    raw = SERVICES[service].get("environment") or {}
    return {k: interpolate(str(v), ENV) for k, v in raw.items()}


def flags(service: str) -> dict[str, str]:
    return dict(
        arg.removeprefix("--").split("=", 1)
        for arg in SERVICES[service].get("command") or []
        if arg.startswith("--") and "=" in arg
    )


def listen_port(service: str) -> int:
    """The port a service listens on inside its container, from its own settings."""
    env, args = environment(service), flags(service)
    listen = {
        "exporter": env.get("EXPORTER_LISTEN"),
        "bridge": env.get("BRIDGE_LISTEN"),
        "prometheus": args.get("web.listen-address"),
        "alertmanager": args.get("web.listen-address"),
        "blackbox": args.get("web.listen-address"),
        "grafana": f":{env.get('GF_SERVER_HTTP_PORT', '')}",
        "postgres": ":5432",  # the image's fixed port
    }[service]
    assert listen, f"{service} does not say where it listens"
    return int(listen.rpartition(":")[2])


def mounts(service: str) -> dict[str, str]:
    """Container path → source (a ./path or a named volume)."""
    out = {}
    for entry in SERVICES[service].get("volumes") or []:
        source, target, *_ = entry.split(":")
        out[target] = source
    return out


def mounted_source(service: str, container_path: str) -> Path:
    """The repository file or directory a container path comes from."""
    path = PurePosixPath(container_path)
    for target, source in mounts(service).items():
        if path == PurePosixPath(target) or PurePosixPath(target) in path.parents:
            assert source.startswith("./"), f"{container_path} is in volume {source}, not the repo"
            return REPO / source / path.relative_to(target)
    raise AssertionError(f"{service}: nothing is mounted at {container_path}")


def assert_points_at(url_or_address: str, service: str) -> None:
    parts = urlsplit(url_or_address if "//" in url_or_address else f"//{url_or_address}")
    assert parts.hostname == service, f"{url_or_address} should name the service {service}"
    assert parts.port == listen_port(service), (
        f"{url_or_address}: {service} listens on {listen_port(service)}"
    )


def rendered(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / "deploy" / "compose" / name).read_text())
