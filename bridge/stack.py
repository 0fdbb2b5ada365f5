"""``passiton-monitoring up``: the whole stack on one machine, supervised.

The exporter and the bridge run as subprocesses of this interpreter (the real services);
Prometheus, Alertmanager and the blackbox exporter run when their binaries are installed. Their
configuration is rendered from this repository's ``prometheus/prometheus.yml`` and
``alertmanager/alertmanager.yml`` (the one source of truth): the default ``localhost`` ports are
replaced by the ports of this stack, rule files become absolute paths, the bridge's URL and token
file are filled in, and the copies are written into the state directory next to the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from exporter.env import ConfigError, read_secrets

BLACKBOX_DEFAULT_PORT = 9115
INSTALL_HINT = (
    "sudo apt-get install prometheus prometheus-alertmanager prometheus-blackbox-exporter"
)
TOKEN_FILE = "bridge-webhook-token"  # noqa: S105 (a file name)
PAGERDUTY_KEY_FILE = "pagerduty-routing-key"
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
BLACKBOX_BINARIES = ("prometheus-blackbox-exporter", "blackbox_exporter")

# A default address in the repository's configs: what every substitution looks for.
_DEFAULT_ADDRESS = re.compile(r"\b(?:localhost|127\.0\.0\.1):(9820|9821|9090|9093|9115)\b")
_ROLE_BY_DEFAULT_PORT = {
    "9820": "exporter",
    "9821": "bridge",
    "9090": "prometheus",
    "9093": "alertmanager",
    "9115": "blackbox",
}


class StackError(RuntimeError):
    """The stack cannot be planned or started (missing config file, bad option...)."""


# --- ports, timing, addresses -----------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    exporter: int = 9820
    bridge: int = 9821
    prometheus: int = 9090
    alertmanager: int = 9093
    blackbox: int = BLACKBOX_DEFAULT_PORT

    @classmethod
    def from_base(cls, base: int | None) -> Ports:
        """The contract's ports, or ``base``, ``base+1``, ``base+2``, ``base+3`` (blackbox +4)."""
        if base is None:
            return cls()
        if not 1 <= base <= 65535 - 4:
            raise StackError(f"--base-port must be between 1 and 65531, got {base}")
        return cls(base, base + 1, base + 2, base + 3, base + 4)


@dataclass(frozen=True)
class Timing:
    """Shorter intervals for demos and tests; ``None`` keeps the repository's value."""

    scrape_seconds: int
    evaluation_seconds: int
    group_wait_seconds: int
    group_interval_seconds: int
    repeat_interval_seconds: int | None = None
    resend_delay_seconds: int | None = None


FAST = Timing(1, 1, 1, 1, repeat_interval_seconds=5, resend_delay_seconds=1)
DEMO = Timing(5, 5, 5, 10, resend_delay_seconds=5)


@dataclass(frozen=True)
class Addresses:
    """Where each role listens in this stack, as ``host:port`` (several for HA roles)."""

    exporter: str
    bridge: tuple[str, ...]
    prometheus: str
    alertmanager: tuple[str, ...]
    blackbox: str

    @classmethod
    def single(cls, host: str, ports: Ports) -> Addresses:
        return cls(
            exporter=f"{host}:{ports.exporter}",
            bridge=(f"{host}:{ports.bridge}",),
            prometheus=f"{host}:{ports.prometheus}",
            alertmanager=(f"{host}:{ports.alertmanager}",),
            blackbox=f"{host}:{ports.blackbox}",
        )

    def all_for(self, role: str) -> tuple[str, ...]:
        value = getattr(self, role)
        return value if isinstance(value, tuple) else (value,)


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


@dataclass(frozen=True)
class PagerDutyDirect:
    """Alertmanager's own PagerDuty receiver (the out-of-band path): its key file and URL."""

    routing_key_file: Path
    url: str | None = None  # None: Alertmanager's default, PagerDuty's Events API v2


def render_alertmanager(
    source: Path,
    addresses: Addresses,
    token_file: Path,
    timing: Timing | None = None,
    pagerduty: PagerDutyDirect | None = None,
) -> dict[str, Any]:
    """``alertmanager.yml`` for this stack: the bridge's address and token file filled in; the
    out-of-band PagerDuty receiver pointed at ``pagerduty``, or dropped without it."""
    config = _rewrite(_load_yaml(source), addresses)
    for receiver in config.get("receivers") or []:
        if pagerduty is None:
            receiver.pop("pagerduty_configs", None)
        for direct in receiver.get("pagerduty_configs") or []:
            direct.pop("routing_key", None)
            direct["routing_key_file"] = str(pagerduty.routing_key_file)
            if pagerduty.url:
                direct["url"] = pagerduty.url
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


def pagerduty_direct(env: Mapping[str, str], state_dir: Path) -> PagerDutyDirect | None:
    """Alertmanager's own PagerDuty receiver when the bridge pages PagerDuty with Alertmanager's
    dedup_key (``PAGERDUTY_DEDUP_KEY=group``): the key in a 0600 file in the state directory."""
    key = env.get("PAGERDUTY_INTEGRATION_KEY", "").strip()
    if not key or env.get("PAGERDUTY_DEDUP_KEY", "").strip().lower() != "group":
        return None
    path = state_dir / PAGERDUTY_KEY_FILE
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key)
    url = env.get("PAGERDUTY_EVENTS_URL", "").strip() or None
    return PagerDutyDirect(path, url)


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


# --- the processes ----------------------------------------------------------------------------


def find_binary(names: Iterable[str], path: str | None = None) -> str | None:
    for name in names:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def browsable(address: str) -> str:
    """The URL of ``host:port`` as a browser on this machine reaches it."""
    host, _, port = address.rpartition(":")
    return f"http://{'localhost' if host in ('', '0.0.0.0', '::', '[::]') else host}:{port}"


def python_service_argv(service: str, listen: str) -> list[str]:
    return [sys.executable, "-m", "bridge.cli", service, "--listen", listen]


def prometheus_argv(
    binary: str, config: Path, data: Path, listen: str, timing: Timing | None
) -> list[str]:
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        # the seasonal traffic baseline reads the same hour of up to four previous weeks
        "--storage.tsdb.retention.time=35d",
        f"--web.listen-address={listen}",
        f"--web.external-url={browsable(listen)}",
        "--web.enable-lifecycle",
    ]
    if timing is not None and timing.resend_delay_seconds is not None:
        argv.append(f"--rules.alert.resend-delay={duration(timing.resend_delay_seconds)}")
    return argv


def alertmanager_argv(
    binary: str,
    config: Path,
    data: Path,
    listen: str,
    *,
    cluster_listen: str = "",
    peers: Sequence[str] = (),
    peer_timeout_seconds: float | None = None,
) -> list[str]:
    """An empty ``cluster_listen`` runs a single node with clustering off."""
    argv = [
        binary,
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address={listen}",
        f"--web.external-url={browsable(listen)}",
        f"--cluster.listen-address={cluster_listen}",
    ]
    if cluster_listen:
        argv.append(f"--cluster.advertise-address={cluster_listen}")
        argv += [f"--cluster.peer={peer}" for peer in peers]
        if peer_timeout_seconds is not None:
            argv.append(f"--cluster.peer-timeout={duration(peer_timeout_seconds)}")
    return argv


def blackbox_argv(binary: str, config: Path, listen: str) -> list[str]:
    return [binary, f"--config.file={config}", f"--web.listen-address={listen}"]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    argv: list[str]
    url: str
    log_file: Path
    env: Mapping[str, str] | None = None
    ready_path: str = "/-/ready"
    show_stdout: bool = False  # the bridge's console channel prints notifications on stdout

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1].split("/", 1)[0])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


# --- planning ---------------------------------------------------------------------------------


def find_config_dir(start: Path | None = None) -> Path:
    """The directory holding ``prometheus/`` and ``alertmanager/``: the checkout, or the cwd."""
    candidates = [Path(__file__).resolve().parent.parent, Path.cwd()]
    if start is not None:
        candidates.insert(0, start)
    for candidate in candidates:
        if (candidate / "prometheus" / "prometheus.yml").is_file():
            return candidate
    raise StackError(
        "prometheus/prometheus.yml not found: run from the passiton-monitoring checkout "
        "or pass --config-dir"
    )


@dataclass(frozen=True)
class StackConfig:
    """Everything ``up`` needs, parsed once from the command line and the environment."""

    config_dir: Path
    state_dir: Path
    ports: Ports = field(default_factory=Ports)
    host: str = "127.0.0.1"
    timing: Timing | None = None
    demo: bool = False
    webhook_token: str = ""
    ingest_token: str = ""
    env: Mapping[str, str] = field(default_factory=dict)  # inherited by the child processes
    channels: tuple[str, ...] = ("console",)
    database: str = "sqlite"
    binaries_path: str | None = None  # PATH to look up binaries in (None: the process's)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str],
        *,
        base_port: int | None = None,
        demo: bool = False,
        fast: bool = False,
        host: str = "127.0.0.1",
        config_dir: Path | None = None,
    ) -> StackConfig:
        from bridge.channels.config import ChannelsConfig

        try:
            env = read_secrets(env)  # NAME_FILE secrets become NAME for the child processes too
        except ConfigError as exc:
            raise StackError(str(exc)) from None
        state_dir = Path(env.get("PASSITON_STATE_DIR", "").strip() or ".passiton").resolve()
        try:
            channels = ChannelsConfig.from_env(env).enabled
        except ValueError as exc:
            raise StackError(str(exc)) from None
        database_url = env.get("DATABASE_URL", "").strip()
        return cls(
            config_dir=(config_dir or find_config_dir()).resolve(),
            state_dir=state_dir,
            ports=Ports.from_base(base_port),
            host=host,
            timing=FAST if fast else DEMO if demo else None,
            demo=demo,
            webhook_token=env.get("BRIDGE_WEBHOOK_TOKEN", "").strip(),
            ingest_token=env.get("EXPORTER_INGEST_TOKEN", "").strip(),
            env=dict(env),
            channels=channels,
            database=_describe_database(database_url, state_dir),
            binaries_path=env.get("PATH"),
        )


def _describe_database(url: str, state_dir: Path) -> str:
    if not url:
        return f"SQLite {state_dir / 'bridge.sqlite3'}"
    if url.startswith("sqlite"):
        return "SQLite " + url.removeprefix("sqlite:///")
    return "PostgreSQL " + re.sub(r"//[^@/]*@", "//", url).split("?")[0]


@dataclass(frozen=True)
class StackPlan:
    services: list[ServiceSpec]
    missing: list[str]  # binaries not installed
    rendered: list[Path]
    webhook_token: str


def plan_stack(config: StackConfig) -> StackPlan:
    """Render the configs into the state directory and describe every process to start."""
    state = config.state_dir
    logs = state / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    host, ports = config.host, config.ports
    listen = Addresses.single(host, ports)
    local = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
    addresses = Addresses.single(local, ports)  # what the configs and URLs point at
    token, token_file = ensure_token_file(state, config.webhook_token)
    child_env = dict(config.env)
    child_env.update(
        PASSITON_STATE_DIR=str(state),
        BRIDGE_WEBHOOK_TOKEN=token,
        PROMETHEUS_URL=browsable(addresses.prometheus),
        ALERTMANAGER_URL=browsable(addresses.alertmanager[0]),
        PYTHONUNBUFFERED="1",
    )
    services = [
        ServiceSpec(
            "exporter",
            python_service_argv("exporter", listen.exporter),
            browsable(addresses.exporter),
            logs / "exporter.log",
            child_env,
        ),
        ServiceSpec(
            "bridge",
            python_service_argv("bridge", listen.bridge[0]),
            browsable(addresses.bridge[0]),
            logs / "bridge.log",
            child_env,
            show_stdout=True,
        ),
    ]
    missing: list[str] = []
    rendered: list[Path] = []
    prometheus = find_binary(["prometheus"], config.binaries_path)
    alertmanager = find_binary(ALERTMANAGER_BINARIES, config.binaries_path)
    blackbox = find_binary(BLACKBOX_BINARIES, config.binaries_path)
    prom_source = config.config_dir / "prometheus" / "prometheus.yml"
    am_source = config.config_dir / "alertmanager" / "alertmanager.yml"
    bb_source = config.config_dir / "prometheus" / "blackbox.yml"
    if prometheus:
        path = write_yaml(
            state / "prometheus.yml",
            render_prometheus(prom_source, addresses, config.timing),
            prom_source,
        )
        rendered.append(path)
        services.append(
            ServiceSpec(
                "prometheus",
                prometheus_argv(
                    prometheus, path, state / "prometheus-data", listen.prometheus, config.timing
                ),
                browsable(addresses.prometheus),
                logs / "prometheus.log",
            )
        )
    else:
        missing.append("prometheus")
    if alertmanager:
        path = write_yaml(
            state / "alertmanager.yml",
            render_alertmanager(
                am_source, addresses, token_file, config.timing, pagerduty_direct(config.env, state)
            ),
            am_source,
        )
        rendered.append(path)
        services.append(
            ServiceSpec(
                "alertmanager",
                alertmanager_argv(
                    alertmanager, path, state / "alertmanager-data", listen.alertmanager[0]
                ),
                browsable(addresses.alertmanager[0]),
                logs / "alertmanager.log",
            )
        )
    else:
        missing.append("alertmanager")
    if blackbox and prometheus and bb_source.is_file():
        path = write_yaml(state / "blackbox.yml", render_blackbox(bb_source), bb_source)
        rendered.append(path)
        services.append(
            ServiceSpec(
                "blackbox",
                blackbox_argv(blackbox, path, listen.blackbox),
                browsable(addresses.blackbox),
                logs / "blackbox.log",
                ready_path="/-/healthy",
            )
        )
    return StackPlan(services, missing, rendered, token)


# --- supervision ------------------------------------------------------------------------------


@dataclass
class Running:
    spec: ServiceSpec
    process: asyncio.subprocess.Process
    ready: bool = False
    exit_reported: bool = False
    pump: asyncio.Task[None] | None = None


async def is_ready(client: httpx.AsyncClient, spec: ServiceSpec) -> bool:
    try:
        response = await client.get(spec.url + spec.ready_path)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class Supervisor:
    """Starts services, reports their health and deaths, stops them all in reverse order."""

    def __init__(self, specs: Sequence[ServiceSpec], out: TextIO) -> None:
        self.specs = list(specs)
        self.out = out
        self.running: list[Running] = []
        self.died: list[str] = []

    def say(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    async def start(self) -> None:
        for spec in self.specs:
            spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            log = spec.log_file.open("ab")
            try:
                process = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    env=dict(spec.env) if spec.env is not None else None,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE if spec.show_stdout else log,
                    stderr=log,
                    start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
                )
            finally:
                log.close()
            running = Running(spec, process)
            if spec.show_stdout:
                running.pump = asyncio.create_task(self._pump(running))
            self.running.append(running)

    async def _pump(self, running: Running) -> None:
        assert running.process.stdout is not None
        while line := await running.process.stdout.readline():
            self.out.write(line.decode("utf-8", "replace"))
            self.out.flush()

    async def wait_ready(self, within: float = 60.0, stop: asyncio.Event | None = None) -> bool:
        """Wait until every service answers its readiness endpoint; False if one did not."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                await self.check(client, announce=False)
                pending = [r for r in self.running if not r.ready and r.process.returncode is None]
                if not pending or time.monotonic() > deadline or (stop and stop.is_set()):
                    return all(r.ready for r in self.running)
                await asyncio.sleep(0.2)

    async def check(self, client: httpx.AsyncClient, *, announce: bool = True) -> None:
        for r in self.running:
            if r.process.returncode is not None:
                if not r.exit_reported:
                    r.exit_reported = True
                    r.ready = False
                    self.died.append(r.spec.name)
                    self.say(
                        f"!! {r.spec.name} exited with code {r.process.returncode} (not "
                        f"restarted); last lines of {r.spec.log_file}:\n{tail(r.spec.log_file)}"
                    )
                continue
            ready = await is_ready(client, r.spec)
            if announce and ready != r.ready:
                self.say(f"{r.spec.name}: {'ready again' if ready else 'NOT READY'} ({r.spec.url})")
            r.ready = ready

    async def watch(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not stop.is_set():
                await self.check(client)
                if self.running and all(r.process.returncode is not None for r in self.running):
                    self.say("every process has exited")
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM everything still running (newest first), wait ``grace``, then SIGKILL."""
        for r in reversed(self.running):
            if r.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    r.process.send_signal(signal.SIGTERM)
        waits = [asyncio.wait_for(r.process.wait(), grace) for r in self.running]
        results = await asyncio.gather(*waits, return_exceptions=True)
        for r, result in zip(self.running, results, strict=True):
            if isinstance(result, TimeoutError):
                self.say(f"{r.spec.name} did not stop within {grace:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    r.process.kill()
                await r.process.wait()
        for r in self.running:
            if r.pump is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(r.pump, 2.0)


def tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (empty log)"


def write_state(config: StackConfig, supervisor: Supervisor) -> Path:
    """``up.json`` in the state directory: each process's URL, pid and log, for other tools."""
    path = config.state_dir / "up.json"
    data = {
        "started_at": time.time(),
        "pid": os.getpid(),
        "services": {
            r.spec.name: {"url": r.spec.url, "pid": r.process.pid, "log": str(r.spec.log_file)}
            for r in supervisor.running
        },
    }
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def banner(config: StackConfig, plan: StackPlan, supervisor: Supervisor) -> str:
    lines = [f"PassItOn monitoring is up (state: {config.state_dir})", ""]
    for r in supervisor.running:
        state = (
            "ready" if r.ready else ("EXITED" if r.process.returncode is not None else "starting")
        )
        lines.append(f"  {r.spec.name:<13} {r.spec.url:<28} {state}")
    for name in plan.missing:
        lines.append(f"  {name:<13} {'(not installed)':<28} -")
    lines.append("")
    if "console" in config.channels:
        lines.append(
            "Notifications: console (printed below; set SLACK_WEBHOOK_URL, SMTP_HOST, ...)"
        )
    else:
        lines.append("Notifications: " + ", ".join(config.channels))
    lines.append(f"Alert database: {config.database}")
    lines.append(f"Logs: {config.state_dir / 'logs'}")
    if plan.missing:
        lines.append(
            f"Prometheus/Alertmanager binaries not found ({', '.join(plan.missing)}): "
            f"only the exporter and the bridge run. Install them with: {INSTALL_HINT}"
        )
    if config.timing is not None:
        t = config.timing
        lines.append(
            f"Short intervals: scrape {t.scrape_seconds}s, evaluation {t.evaluation_seconds}s, "
            f"group_wait {t.group_wait_seconds}s"
        )
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


DemoRunner = Callable[[str, str, asyncio.Event, TextIO], Any]


async def run_stack(
    config: StackConfig,
    out: TextIO,
    *,
    demo: DemoRunner | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or ``stop``); 0 after a clean stop, 1 if a process died."""
    plan = plan_stack(config)
    taken = [f"{s.name} {s.port}" for s in plan.services if port_in_use(config.host, s.port)]
    if taken:
        raise StackError(
            f"already in use: {', '.join(taken)}. Another `up`, or the Debian services "
            "(sudo systemctl stop prometheus prometheus-alertmanager)? "
            "Or choose other ports with --base-port N."
        )
    supervisor = Supervisor(plan.services, out)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    demo_task: asyncio.Task[Any] | None = None
    try:
        await supervisor.start()
        write_state(config, supervisor)
        ready = await supervisor.wait_ready(stop=stop)
        supervisor.say(banner(config, plan, supervisor))
        if not ready:
            supervisor.say("!! not every process became ready; see the logs above")
        if demo is not None and not stop.is_set():
            exporter = next(s.url for s in plan.services if s.name == "exporter")
            demo_task = asyncio.create_task(demo(exporter, config.ingest_token, stop, out))
        await supervisor.watch(stop)
    finally:
        stop.set()
        if demo_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(demo_task, 10)
        supervisor.say("stopping...")
        await supervisor.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        supervisor.say("stopped")
    return 1 if supervisor.died else 0


def up(args: Any, env: Mapping[str, str], out: TextIO | None = None) -> int:
    """The ``up`` subcommand: ``args`` from its argparse parser (demo, base_port, fast, ...)."""
    out = out or sys.stdout
    for noisy in ("httpx", "httpcore"):  # one line per readiness poll otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = StackConfig.from_env(
            env,
            base_port=args.base_port,
            demo=args.demo,
            fast=args.fast,
            host=args.host,
            config_dir=args.config_dir,
        )
    except StackError as exc:
        print(f"passiton-monitoring up: {exc}", file=sys.stderr)
        return 2
    demo = None
    if config.demo:
        from bridge.demo import run_demo

        demo = run_demo
    try:
        return asyncio.run(run_stack(config, out, demo=demo))
    except StackError as exc:
        print(f"passiton-monitoring up: {exc}", file=sys.stderr)
        return 2
