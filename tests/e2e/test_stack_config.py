"""How ``up`` renders the repository's Prometheus and Alertmanager configs for one stack, checked
by the real tools (promtool, amtool) as well as by reading the result."""

from __future__ import annotations

import asyncio
import io
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from passiton_monitoring.stack import (
    FAST,
    Addresses,
    Ports,
    StackConfig,
    StackError,
    duration,
    ensure_token_file,
    parse_duration,
    plan_stack,
    prometheus_argv,
    render_alertmanager,
    render_prometheus,
    write_yaml,
)
from passiton_monitoring.stack.supervise import Running, Supervisor
from tests.e2e.harness import REPO, clean_environ, free_port_block

PROMETHEUS_YML = REPO / "prometheus" / "prometheus.yml"
ALERTMANAGER_YML = REPO / "alertmanager" / "alertmanager.yml"


def _targets(config: dict) -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def test_ports_follow_the_contract() -> None:
    assert Ports.from_base(None) == Ports(9820, 9821, 9090, 9093, 9115, 9822)
    assert Ports.from_base(20000) == Ports(20000, 20001, 20002, 20003, 20005, 20004)
    with pytest.raises(StackError):
        Ports.from_base(65531)


def test_durations_round_trip() -> None:
    assert duration(1) == "1s"
    assert duration(0) == "0s"
    assert duration(0.25) == "250ms"
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    with pytest.raises(StackError):
        parse_duration("5 minutes")


def test_prometheus_targets_rules_and_intervals_are_substituted() -> None:
    addresses = Addresses.single("127.0.0.1", Ports.from_base(30000))
    source = yaml.safe_load(PROMETHEUS_YML.read_text())
    config = render_prometheus(PROMETHEUS_YML, addresses)
    assert config["global"] == source["global"]  # production intervals kept without timing
    targets = _targets(config)
    assert targets["passiton-exporter"] == ["127.0.0.1:30000"]
    assert targets["passiton-bridge"] == ["127.0.0.1:30001"]
    assert targets["prometheus"] == ["127.0.0.1:30002"]
    assert targets["alertmanager"] == ["127.0.0.1:30003"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:30003"
    ]
    assert "localhost:98" not in yaml.safe_dump(config)
    assert all(Path(p).is_absolute() for p in config["rule_files"])

    fast = render_prometheus(PROMETHEUS_YML, addresses, FAST)
    assert fast["global"]["scrape_interval"] == "1s"
    assert fast["global"]["evaluation_interval"] == "1s"


def test_ha_roles_expand_to_every_replica_in_targets() -> None:
    addresses = Addresses(
        exporter="127.0.0.1:1",
        bridge=("127.0.0.1:2", "127.0.0.1:3"),
        prometheus="127.0.0.1:4",
        alertmanager=("127.0.0.1:5", "127.0.0.1:6"),
        blackbox="127.0.0.1:7",
    )
    config = render_prometheus(PROMETHEUS_YML, addresses)
    assert _targets(config)["passiton-bridge"] == ["127.0.0.1:2", "127.0.0.1:3"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == [
        "127.0.0.1:5",
        "127.0.0.1:6",
    ]


def test_alertmanager_gets_the_bridge_url_token_file_and_short_intervals(tmp_path: Path) -> None:
    addresses = Addresses.single("127.0.0.1", Ports.from_base(30000))
    token_file = tmp_path / "token"
    config = render_alertmanager(ALERTMANAGER_YML, addresses, token_file, FAST)
    webhooks = [w for r in config["receivers"] for w in r.get("webhook_configs", [])]
    assert webhooks
    for webhook in webhooks:
        assert webhook["url"].startswith("http://127.0.0.1:30001/")
        auth = webhook["http_config"].get("authorization") or webhook["http_config"]["basic_auth"]
        assert str(token_file) in auth.values()

    def routes(route: dict) -> list[dict]:
        return [route] + [r for child in route.get("routes", []) for r in routes(child)]

    for route in routes(config["route"]):
        for key in ("group_wait", "group_interval"):
            if key in route:
                assert parse_duration(route[key]) <= 1
    source = yaml.safe_load(ALERTMANAGER_YML.read_text())
    assert config["inhibit_rules"] == source.get("inhibit_rules")


def test_rendered_configs_pass_promtool_and_amtool(tmp_path: Path) -> None:
    addresses = Addresses.single("127.0.0.1", Ports.from_base(30000))
    _, token_file = ensure_token_file(tmp_path, "secret-token")
    prom = write_yaml(
        tmp_path / "prometheus.yml",
        render_prometheus(PROMETHEUS_YML, addresses, FAST),
        PROMETHEUS_YML,
    )
    am = write_yaml(
        tmp_path / "alertmanager.yml",
        render_alertmanager(ALERTMANAGER_YML, addresses, token_file, FAST),
        ALERTMANAGER_YML,
    )
    for argv in (["promtool", "check", "config", str(prom)], ["amtool", "check-config", str(am)]):
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_token_file_is_private_and_kept_between_runs(tmp_path: Path) -> None:
    token, path = ensure_token_file(tmp_path, "")
    assert len(token) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert ensure_token_file(tmp_path, "")[0] == token
    assert ensure_token_file(tmp_path, "given")[0] == "given"
    assert path.read_text() == "given"


def test_plan_without_binaries_runs_the_two_services_only(tmp_path: Path) -> None:
    config = StackConfig.from_env(
        {"PATH": str(tmp_path / "empty"), "PASSITON_STATE_DIR": str(tmp_path / "state")},
        base_port=30000,
        config_dir=REPO,
    )
    plan = plan_stack(config)
    assert [s.name for s in plan.services] == ["exporter", "bridge"]
    assert plan.missing == ["prometheus", "alertmanager"]
    assert config.channels == ("console",)
    exporter = plan.services[0]
    assert exporter.argv[-5:] == [
        "--listen",
        "127.0.0.1:30000",
        "--public-listen",
        "127.0.0.1:30004",
        "--dev",  # no EXPORTER_INGEST_TOKEN: an explicit local development run
    ]
    assert exporter.env is not None
    assert exporter.env["PASSITON_STATE_DIR"] == str(tmp_path / "state")
    assert exporter.env["BRIDGE_WEBHOOK_TOKEN"] == plan.webhook_token


def test_up_refuses_ports_in_use_and_names_them(tmp_path: Path) -> None:
    base = free_port_block()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 2))
        taken.listen()
        result = subprocess.run(
            [sys.executable, "-m", "passiton_monitoring", "up", "--base-port", str(base)],
            cwd=REPO,
            env={**clean_environ(), "PASSITON_STATE_DIR": str(tmp_path / "state")},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert f"prometheus {base + 2}" in result.stderr
    assert "--base-port" in result.stderr
    assert not (tmp_path / "state" / "up.json").exists()


def test_prometheus_keeps_enough_history_for_the_seasonal_baseline():
    # TrafficSpike/TrafficDrop compare with the same hour of up to four previous weeks.
    argv = prometheus_argv("prometheus", Path("p.yml"), Path("data"), "127.0.0.1:9090", None)
    assert "--storage.tsdb.retention.time=35d" in argv


class _ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_stop_reaches_every_process_when_the_output_is_gone():
    """`up` under a parent that died: reporting fails, stopping must still happen."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)"
    )
    supervisor = Supervisor([], _ClosedPipe())
    supervisor.running.append(Running(spec=None, process=child))  # type: ignore[arg-type]
    supervisor.say("stopping...")
    await supervisor.stop(grace=5)
    assert child.returncode is not None
