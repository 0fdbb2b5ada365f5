"""passiton_common/variables.py: every variable read is declared there, once, and the README's
table, the configuration dataclasses' defaults and .env.example agree with it."""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

import pytest

from bridge.channels.config import ChannelsConfig, EmailSettings, PagerDutySettings, SmsSettings
from bridge.config import BridgeConfig
from exporter.config import ExporterConfig
from passiton_common import variables
from passiton_common.settings import (
    SECRET_NAMES,
    ConfigError,
    read_choice,
    read_float,
    read_int,
    read_listen,
    read_text,
)
from passiton_common.variables import VARIABLES, Variable, default_of, render_into

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("exporter", "bridge", "passiton_common", "passiton_monitoring")
# Calls whose string argument names an environment variable.
READERS = {
    "get",
    "getenv",
    "required",
    "url",
    "list",
    "value",
    "choice",
    "default_of",
    "variable",
    "read_text",
    "read_int",
    "read_float",
    "read_bool",
    "read_csv",
    "read_listen",
    "read_choice",
    "env_int",
    "env_float",
    "env_bool",
    "env_csv",
}
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")


def _names_read(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name not in READERS:
                continue
            args = node.args[:2]
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name | ast.Attribute):
            holder = node.value
            if (holder.id if isinstance(holder, ast.Name) else holder.attr) not in (
                "env",
                "environ",
            ):
                continue
            args = [node.slice]
        else:
            continue
        for arg in args:
            if isinstance(arg, ast.Constant) and ENV_NAME.match(str(arg.value)):
                found.add(arg.value)
    return found


def _sources() -> list[Path]:
    return [path for package in PACKAGES for path in sorted((REPO / package).rglob("*.py"))]


def test_every_variable_read_anywhere_is_declared() -> None:
    read = {name: path for path in _sources() for name in _names_read(path)}
    undeclared = {name: str(path.relative_to(REPO)) for name, path in read.items()}
    for name in VARIABLES:
        undeclared.pop(name, None)
    assert not undeclared, f"read but not declared in passiton_common/variables.py: {undeclared}"
    assert len(read) > 50  # the scan sees the configuration modules


def test_every_declared_variable_is_read_somewhere() -> None:
    read = set().union(*(_names_read(path) for path in _sources() if path.name != "variables.py"))
    assert set(VARIABLES) <= read, f"declared, never read: {sorted(set(VARIABLES) - read)}"


def test_each_variable_is_declared_once_with_its_help() -> None:
    source = (REPO / "passiton_common" / "variables.py").read_text(encoding="utf-8")
    for name, declared in VARIABLES.items():
        assert source.count(f'Variable("{name}"') == 1, name
        assert declared.help.strip(), f"{name} has no help"
        assert "\n" not in declared.help, name
        assert "|" not in declared.help, name
        assert declared.used_by


def test_secrets_and_tokens_come_from_the_catalogue() -> None:
    assert set(SECRET_NAMES) == {v.name for v in VARIABLES.values() if v.secret}
    assert {"DATABASE_URL", "SMTP_PASSWORD", "BRIDGE_WEBHOOK_TOKEN"} <= set(SECRET_NAMES)
    for name in variables.TOKEN_NAMES:
        assert VARIABLES[name].secret, f"{name} is a token but not a secret"


def test_a_default_must_have_the_declared_type() -> None:
    with pytest.raises(TypeError, match="SOME_LIMIT"):
        Variable("SOME_LIMIT", "int", "bridge", "a limit", "ten")
    with pytest.raises(ValueError, match="SOME_MODE"):
        Variable("SOME_MODE", "choice", "bridge", "a mode", "c", choices=("a", "b"))


# --- the README -------------------------------------------------------------------------------


def test_the_readme_table_is_generated_from_the_catalogue() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert render_into(readme) == readme, (
        "README.md's configuration table is stale: "
        "python -m passiton_common.variables --write README.md"
    )
    for name, declared in VARIABLES.items():
        assert f"| `{name}` | {declared.default_cell} | {declared.used_by} |" in readme


def test_check_fails_with_a_diff_and_write_repairs(tmp_path, capsys) -> None:
    readme = tmp_path / "README.md"
    real = (REPO / "README.md").read_text(encoding="utf-8")
    readme.write_text(real.replace("`passiton-monitoring@localhost`", "`alerts@localhost`"))
    assert variables.main(["--check", str(readme)]) == 1
    err = capsys.readouterr().err
    assert "-| `ALERT_EMAIL_FROM` | `alerts@localhost`" in err
    assert "+| `ALERT_EMAIL_FROM` | `passiton-monitoring@localhost`" in err
    assert "--write" in err
    assert variables.main(["--write", str(readme)]) == 0
    assert readme.read_text() == real
    assert variables.main(["--check", str(readme)]) == 0


def test_markers_are_required(tmp_path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# no table here\n")
    with pytest.raises(ValueError, match="markers"):
        variables.main(["--check", str(readme)])


# --- the dataclasses' defaults -------------------------------------------------------------------


def test_exporter_defaults_are_the_catalogues() -> None:
    from_env = ExporterConfig.from_env({})
    assert from_env == ExporterConfig()
    assert from_env.max_series_per_metric == default_of("EXPORTER_MAX_SERIES_PER_METRIC")
    assert from_env.bounds.route == default_of("EXPORTER_MAX_ROUTES")
    assert f"{from_env.listen_host}:{from_env.listen_port}" == default_of("EXPORTER_LISTEN")


def test_bridge_defaults_are_the_catalogues() -> None:
    from_env = BridgeConfig.from_env({})
    built = BridgeConfig(database_url=from_env.database_url, channels=from_env.channels)
    assert from_env == built
    assert from_env.retry.max_age_seconds == default_of("BRIDGE_DELIVERY_MAX_AGE_SECONDS")
    assert from_env.prometheus_url == default_of("PROMETHEUS_URL")
    assert str(from_env.state_dir) == default_of("PASSITON_STATE_DIR")


def test_channel_defaults_are_the_catalogues() -> None:
    config = ChannelsConfig.from_env(
        {
            "SMTP_HOST": "smtp.example.org",
            "ALERT_EMAIL_RECIPIENTS": "ops@example.org",
            "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
            "TWILIO_AUTH_TOKEN": "token",
            "TWILIO_PHONE_NUMBER": "+14155550100",
            "ALERT_SMS_RECIPIENTS": "+14155550111",
            "PAGERDUTY_INTEGRATION_KEY": "0123456789abcdef",
        }
    )
    assert config.email == EmailSettings(host="smtp.example.org", recipients=("ops@example.org",))
    assert config.email.sender == default_of("ALERT_EMAIL_FROM")
    assert config.email.port == variables.SMTP_DEFAULT_PORTS[default_of("SMTP_TLS")]
    assert config.sms is not None
    assert config.sms.api_url == SmsSettings("AC", "t").api_url == default_of("TWILIO_API_URL")
    assert config.pagerduty == PagerDutySettings(integration_key="0123456789abcdef")
    assert config.pagerduty.dedup == default_of("PAGERDUTY_DEDUP_KEY")


def test_env_example_values_are_the_defaults_and_switch_no_channel_on() -> None:
    example = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.startswith("#") and name in VARIABLES:
            example[name] = value.strip()
    assert {"ALERT_EMAIL_FROM", "EXPORTER_MAX_SERIES_PER_METRIC"} <= set(example)
    exporter = ExporterConfig.from_env(example)
    assert dataclasses.replace(exporter, ingest_token="") == ExporterConfig.from_env({})
    bridge = BridgeConfig.from_env(example)
    assert bridge.channels.enabled == ("console",)
    assert dataclasses.replace(bridge, database_url="") == dataclasses.replace(
        BridgeConfig.from_env({}), database_url=""
    )


# --- reading through the catalogue -------------------------------------------------------------


def test_reading_an_undeclared_variable_or_with_the_wrong_type_is_a_bug() -> None:
    with pytest.raises(KeyError, match="BRIDGE_TYPO"):
        read_int({}, "BRIDGE_TYPO")
    with pytest.raises(TypeError, match="RETENTION_DAYS"):
        read_float({}, "RETENTION_DAYS")


def test_bounds_and_choices_are_enforced_with_the_variable_named() -> None:
    with pytest.raises(ConfigError, match="BRIDGE_FLAP_CYCLES must be at least 2, got '1'"):
        read_int({"BRIDGE_FLAP_CYCLES": "1"}, "BRIDGE_FLAP_CYCLES")
    with pytest.raises(ConfigError, match="SMTP_TLS must be starttls, tls or none, got 'ssl'"):
        read_choice({"SMTP_TLS": "ssl"}, "SMTP_TLS")
    assert read_choice({"SMTP_TLS": " TLS "}, "SMTP_TLS") == "tls"
    with pytest.raises(ConfigError, match=r"^BRIDGE_LISTEN: listen address"):
        read_listen({"BRIDGE_LISTEN": "nowhere"}, "BRIDGE_LISTEN")
    assert read_text({"LOG_LEVEL": "  "}, "LOG_LEVEL") == "INFO"
    with pytest.raises(ConfigError, match="SMTP_PORT must be a port number \\(1-65535\\)"):
        ChannelsConfig.from_env(
            {"SMTP_HOST": "h", "ALERT_EMAIL_RECIPIENTS": "a@b.c", "SMTP_PORT": "70000"}
        )
