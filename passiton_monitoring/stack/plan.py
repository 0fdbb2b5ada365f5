"""Planning ``up``: which processes run, with which argv, environment, ports and files."""

from __future__ import annotations

import re
import shutil
import socket
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bridge.channels.config import ChannelsConfig
from passiton_common.settings import ConfigError, read_secrets
from passiton_monitoring.stack.ports import (
    ALERTMANAGER_BINARIES,
    BLACKBOX_BINARIES,
    DEMO,
    FAST,
    Addresses,
    Ports,
    StackError,
    Timing,
)
from passiton_monitoring.stack.render import (
    duration,
    ensure_token_file,
    pagerduty_direct,
    render_alertmanager,
    render_blackbox,
    render_prometheus,
    write_yaml,
)

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
    return [sys.executable, "-m", "passiton_monitoring", service, "--listen", listen]


def exporter_argv(listen: str, public_listen: str, ingest_token: str) -> list[str]:
    """The exporter's two listeners; without EXPORTER_INGEST_TOKEN, an explicit development run."""
    argv = [*python_service_argv("exporter", listen), "--public-listen", public_listen]
    return argv if ingest_token else [*argv, "--dev"]


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
    candidates = [Path(__file__).resolve().parents[2], Path.cwd()]
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
    database: str = "embedded PostgreSQL"
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
        return f"embedded PostgreSQL in {state_dir / 'postgres'}"
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
            exporter_argv(listen.exporter, f"{host}:{ports.exporter_public}", config.ingest_token),
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
