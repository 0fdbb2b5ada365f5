"""docker-compose.yml, the Dockerfile and .env.example, checked statically (no Docker engine here):
the file parses, every mounted file exists, and every address between services agrees with the
Prometheus and Alertmanager configs the containers read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import dockerfile
import jsonschema_rs
import pytest
import yaml

from deploy import render_compose
from passiton_monitoring.cli import build_parser

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
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


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


# --- the file itself ---------------------------------------------------------------------------


def test_the_file_follows_the_compose_specification() -> None:
    """Against the Compose Specification's JSON schema (compose-spec/compose-spec,
    Apache-2.0, as shipped in the dclint 3.1.0 npm package): tests/data/compose-spec.schema.json."""
    schema = json.loads((REPO / "tests/data/compose-spec.schema.json").read_text())
    validator = jsonschema_rs.validator_for(schema)
    errors = [
        f"{'/'.join(map(str, e.instance_path))}: {e.message}"
        for e in validator.iter_errors(COMPOSE)
    ]
    assert errors == []
    broken = {
        **COMPOSE,
        "secrets": {"bridge_webhook_token": {"environmnt": "BRIDGE_WEBHOOK_TOKEN"}},
    }
    assert not validator.is_valid(broken)


def test_every_service_is_there_with_a_health_check() -> None:
    assert set(SERVICES) == {*LONG_RUNNING, "migrate"}
    for name in LONG_RUNNING:
        check = SERVICES[name].get("healthcheck", {}).get("test")
        assert check, f"{name} has no health check"
        assert check[0] == "CMD"
        assert SERVICES[name]["restart"] == "unless-stopped"


def test_health_checks_ask_the_service_itself() -> None:
    for name in LONG_RUNNING:
        command = " ".join(SERVICES[name]["healthcheck"]["test"][1:])
        if name == "postgres":
            assert "pg_isready" in command
            continue
        urls = re.findall(r"http://[^\s'\"]+", command)
        assert len(urls) == 1, command
        parts = urlsplit(urls[0])
        assert parts.hostname == "127.0.0.1", urls[0]
        assert parts.port == listen_port(name), urls[0]


def published_listen_port(service: str) -> int:
    """The listening port a service publishes: the exporter publishes only its public one."""
    if service == "exporter":
        return int(environment("exporter")["EXPORTER_PUBLIC_LISTEN"].rpartition(":")[2])
    return listen_port(service)


def test_the_exporter_publishes_only_its_public_listener() -> None:
    published = [
        int(interpolate(entry, ENV).rpartition(":")[2]) for entry in SERVICES["exporter"]["ports"]
    ]
    assert published == [published_listen_port("exporter")]
    assert listen_port("exporter") not in published


def test_published_ports_reach_the_listening_port() -> None:
    for name, service in SERVICES.items():
        for entry in service.get("ports") or []:
            container_port = int(interpolate(entry, ENV).rpartition(":")[2])
            assert container_port == published_listen_port(name), (name, entry)
            assert interpolate(entry, ENV).startswith("127.0.0.1:"), (
                "published on localhost by default"
            )


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(COMPOSE["volumes"])
    used = {
        source
        for name in SERVICES
        for source in mounts(name).values()
        if not source.startswith((".", "/"))
    }
    assert used == declared
    assert {"postgres-data", "prometheus-data", "alertmanager-data", "grafana-data"} <= declared


def test_every_mounted_repository_file_exists_read_only() -> None:
    seen = 0
    for service in SERVICES.values():
        for entry in service.get("volumes") or []:
            source, _, mode = [*entry.split(":"), ""][:3]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{source} is mounted but does not exist"
                assert mode == "ro", f"{source} should be mounted read-only"
                seen += 1
    assert seen >= 6


def test_config_flags_name_mounted_files() -> None:
    prom = mounted_source("prometheus", flags("prometheus")["config.file"])
    assert prom == REPO / "deploy/compose/prometheus.yml"
    am = mounted_source("alertmanager", flags("alertmanager")["config.file"])
    assert am == REPO / "deploy/compose/alertmanager.yml"
    blackbox = mounted_source("blackbox", flags("blackbox")["config.file"])
    assert blackbox == REPO / "prometheus/blackbox.yml"
    # data directories are named volumes, so they survive a `docker compose down`
    for service, flag in (("prometheus", "storage.tsdb.path"), ("alertmanager", "storage.path")):
        assert not mounts(service)[flags(service)[flag]].startswith(".")


def test_prometheus_rule_files_resolve_to_the_repository_rules() -> None:
    config_path = PurePosixPath(flags("prometheus")["config.file"])
    patterns = rendered("prometheus.yml")["rule_files"]
    assert patterns
    for pattern in patterns:
        container_pattern = config_path.parent / pattern
        source_dir = mounted_source("prometheus", str(container_pattern.parent))
        assert list(source_dir.glob(container_pattern.name)), f"{pattern} matches no rule file"
    assert sorted(p.name for p in (REPO / "prometheus/rules").glob("*.yml")) == sorted(
        p.name for p in mounted_source("prometheus", "/etc/prometheus/rules").glob("*.yml")
    )


def test_retention_covers_the_traffic_baseline() -> None:
    # the seasonal baseline compares with the same hour up to four weeks back
    retention = flags("prometheus")["storage.tsdb.retention.time"]
    days = int(retention.removesuffix("d"))
    assert days >= 29


# --- the rendered configs agree with the repository's and with Compose -------------------------


def test_rendered_configs_are_up_to_date() -> None:
    assert render_compose.stale() == [], "run: python -m deploy.render_compose"


def test_rendered_configs_change_only_addresses_and_token() -> None:
    source = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    compose = rendered("prometheus.yml")
    assert [j["job_name"] for j in compose["scrape_configs"]] == [
        j["job_name"] for j in source["scrape_configs"]
    ]
    assert compose["global"] == source["global"]
    assert compose["rule_files"] == source["rule_files"]
    assert "localhost" not in yaml.safe_dump(compose)
    assert "localhost" not in yaml.safe_dump(rendered("alertmanager.yml"))


def _static_targets(config: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for job in config["scrape_configs"]:
        for group in job.get("static_configs") or []:
            out += [(job["job_name"], t) for t in group["targets"]]
    return out


def test_prometheus_scrapes_every_service_by_its_compose_name() -> None:
    config = rendered("prometheus.yml")
    scraped = set()
    for job in config["scrape_configs"]:
        replacement = next(
            (
                r["replacement"]
                for r in job.get("relabel_configs") or []
                if r.get("target_label") == "__address__"
            ),
            None,
        )
        for _, target in _static_targets({"scrape_configs": [job]}):
            if replacement:  # a probe: the target is a URL, the address is the prober
                host = urlsplit(target).hostname
                assert_points_at(target, host)
                assert_points_at(replacement, "blackbox")
                scraped.add("blackbox")
            else:
                host = target.partition(":")[0]
                assert_points_at(target, host)
                scraped.add(host)
    assert scraped >= {"exporter", "bridge", "prometheus", "alertmanager", "blackbox"}


def test_prometheus_sends_alerts_to_alertmanager() -> None:
    config = rendered("prometheus.yml")
    targets = [
        t
        for am in config["alerting"]["alertmanagers"]
        for group in am["static_configs"]
        for t in group["targets"]
    ]
    assert targets
    for target in targets:
        assert_points_at(target, "alertmanager")


def test_alertmanager_sends_to_the_bridge_with_the_token_secret() -> None:
    config = rendered("alertmanager.yml")
    webhooks = [w for r in config["receivers"] for w in r.get("webhook_configs") or []]
    assert webhooks
    secret_paths = {f"/run/secrets/{name}" for name in SERVICES["alertmanager"]["secrets"]}
    for webhook in webhooks:
        assert_points_at(webhook["url"], "bridge")
        assert urlsplit(webhook["url"]).path == "/v1/alertmanager"
        http = webhook["http_config"]
        token_file = (http.get("authorization") or {}).get("credentials_file") or (
            http.get("basic_auth") or {}
        ).get("password_file")
        assert token_file in secret_paths
        assert "credentials" not in (http.get("authorization") or {})
    (secret_name,) = SERVICES["alertmanager"]["secrets"]
    assert COMPOSE["secrets"][secret_name] == {"environment": "BRIDGE_WEBHOOK_TOKEN"}
    assert environment("bridge")["BRIDGE_WEBHOOK_TOKEN"] == ENV["BRIDGE_WEBHOOK_TOKEN"]


def test_urls_between_services_agree() -> None:
    bridge = environment("bridge")
    assert_points_at(bridge["PROMETHEUS_URL"], "prometheus")
    assert_points_at(bridge["ALERTMANAGER_URL"], "alertmanager")
    assert_points_at(environment("grafana")["PROMETHEUS_URL"], "prometheus")
    postgres = environment("postgres")
    for service in ("bridge", "migrate"):
        url = urlsplit(environment(service)["DATABASE_URL"])
        assert url.scheme == "postgresql"
        assert_points_at(url.geturl(), "postgres")
        assert url.username == postgres["POSTGRES_USER"]
        assert (
            url.password == postgres["POSTGRES_PASSWORD"] == REQUIRED_SECRETS["POSTGRES_PASSWORD"]
        )
        assert url.path == f"/{postgres['POSTGRES_DB']}"


def test_database_url_from_env_replaces_the_local_postgres() -> None:
    supabase = "postgresql://postgres.ref:pw@aws-0-eu-central-1.pooler.supabase.com:6543/postgres"
    raw = SERVICES["bridge"]["environment"]["DATABASE_URL"]
    assert interpolate(raw, {**ENV, "DATABASE_URL": supabase}) == supabase


def test_required_secrets_are_enforced() -> None:
    needed_by = {
        "POSTGRES_PASSWORD": "postgres",
        "BRIDGE_WEBHOOK_TOKEN": "bridge",
        "GRAFANA_ADMIN_PASSWORD": "grafana",
    }
    for name, service in needed_by.items():
        assert ENV_EXAMPLE[name] == "", f"{name} must not ship with a value"
        without = {**ENV, name: ""}
        values = " ".join(str(v) for v in SERVICES[service]["environment"].values())
        with pytest.raises(LookupError, match=name):
            interpolate(values, without)


# --- migrations, the image and the environment -------------------------------------------------


def test_migrations_run_before_the_bridge() -> None:
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["bridge"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert environment("bridge")["BRIDGE_AUTO_MIGRATE"] == "false"
    assert environment("migrate")["DATABASE_URL"] == environment("bridge")["DATABASE_URL"]


def test_our_services_share_one_image_and_run_real_subcommands() -> None:
    images = {SERVICES[name]["image"] for name in OUR_IMAGE}
    assert len(images) == 1
    parser = build_parser()
    for name in OUR_IMAGE:
        assert SERVICES[name]["build"]["context"] == "."
        args = parser.parse_args(SERVICES[name]["command"])
        assert args.command == SERVICES[name]["command"][0]


def dockerfile_stages() -> list[list[dockerfile.Command]]:
    """The Dockerfile's instructions (BuildKit's own parser), split into build stages."""
    stages: list[list[dockerfile.Command]] = []
    for command in dockerfile.parse_file(str(REPO / "Dockerfile")):
        if command.cmd == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(command)
    return stages


def test_dockerfile_is_multi_stage_non_root_with_the_console_script() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    names = [stage[0].value[2] for stage in stages]
    runtime = stages[-1]
    assert [c.value for c in runtime if c.cmd == "COPY" and f"--from={names[0]}" in c.flags], (
        "the runtime stage copies the build stage's result"
    )
    assert not [c for c in runtime if c.cmd == "RUN" and "pip install" in c.value[0]]
    users = [c.value[0] for c in runtime if c.cmd == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    (entrypoint,) = [c for c in runtime if c.cmd == "ENTRYPOINT"]
    assert entrypoint.json
    assert entrypoint.value == ("passiton-monitoring",)
    # the console script the image runs is the one the distribution installs
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'passiton-monitoring = "passiton_monitoring.cli:main"' in pyproject


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for command in dockerfile_stages()[-1]:
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2], strict=True))
    return env


def test_dockerignore_keeps_the_build_context_small() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded unless named"
    allowed = {line.lstrip("!").rstrip("/") for line in lines if line.startswith("!")}
    sources = {
        source
        for stage in dockerfile_stages()
        for c in stage
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
        for source in c.value[:-1]
    }
    assert sources == {
        "pyproject.toml",
        "README.md",
        "exporter",
        "bridge",
        "console",
        "passiton_common",
        "passiton_monitoring",
    }
    assert sources <= allowed, "the Dockerfile copies something .dockerignore excludes"


def test_env_example_lists_every_variable() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    referenced = set(_VAR.findall(text))
    assert referenced == set(ENV_EXAMPLE), (
        "in docker-compose.yml but not .env.example: "
        f"{sorted(referenced - set(ENV_EXAMPLE))}; "
        f"in .env.example but unused: {sorted(set(ENV_EXAMPLE) - referenced)}"
    )
    readme = (REPO / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    first_cells = [row.split("|")[1] for row in table.splitlines() if row.startswith("| `")]
    documented = {name for cell in first_cells for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}
    assert len(documented) > 20
    example = (REPO / ".env.example").read_text()
    listed = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.M))
    assert documented <= listed, f"missing from .env.example: {sorted(documented - listed)}"
    # a variable Compose fixes itself is listed as a comment, and really fixed
    for name in listed - set(ENV_EXAMPLE):
        fixed = [s for s in OUR_IMAGE if name in (SERVICES[s].get("environment") or {})]
        in_image = name in image_env()
        assert fixed or in_image, f"{name} is said to be set by Compose but is not"


# --- the real tools accept what the containers read --------------------------------------------


def test_promtool_accepts_the_compose_prometheus_config(tmp_path: Path) -> None:
    """Laid out as the container sees it: the config with the rules directory beside it."""
    config_path = PurePosixPath(flags("prometheus")["config.file"])
    root = tmp_path / "etc"
    root.mkdir()
    for target, source in mounts("prometheus").items():
        if source.startswith("./") and PurePosixPath(target).parent == config_path.parent:
            dest = root / PurePosixPath(target).name
            if (REPO / source).is_dir():
                shutil.copytree(REPO / source, dest)
            else:
                shutil.copy(REPO / source, dest)
    result = subprocess.run(
        ["promtool", "check", "config", str(root / config_path.name)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = len(list((REPO / "prometheus/rules").glob("*.yml")))
    assert f"SUCCESS: {rule_files} rule files found" in result.stdout + result.stderr


def test_amtool_accepts_the_compose_alertmanager_config() -> None:
    result = subprocess.run(
        ["amtool", "check-config", str(REPO / "deploy/compose/alertmanager.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
