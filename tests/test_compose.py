"""docker-compose.yml and the configs rendered for it, checked statically (no Docker engine here):
the file parses, every mounted file exists, and every address between services agrees with the
Prometheus and Alertmanager configs the containers read."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import jsonschema_rs
import pytest
import yaml

from deploy import render_compose
from tests.compose_support import (
    COMPOSE,
    ENV,
    ENV_EXAMPLE,
    LONG_RUNNING,
    REPO,
    REQUIRED_SECRETS,
    SERVICES,
    assert_points_at,
    environment,
    flags,
    interpolate,
    listen_port,
    mounted_source,
    mounts,
    rendered,
)

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
