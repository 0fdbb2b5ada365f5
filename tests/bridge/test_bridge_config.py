"""BridgeConfig.from_env: the contract's defaults and clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.config import BridgeConfig, ConfigError


def test_defaults():
    config = BridgeConfig.from_env({})
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 9821)
    assert config.database_url == ""  # the embedded PostgreSQL in the state directory
    assert config.state_dir == Path(".passiton")
    assert config.retention_days == 90
    assert config.webhook_token == ""
    assert config.channels.enabled == ("console",)
    assert config.rate_limits == {}
    assert config.console_working_hours.describe() == "mon-fri 09:00-18:00"


def test_values_from_the_environment(tmp_path):
    config = BridgeConfig.from_env(
        {
            "PASSITON_STATE_DIR": str(tmp_path),
            "BRIDGE_WEBHOOK_TOKEN": " s3cret-s3cret-s3cret ",
            "RETENTION_DAYS": "30",
            "BRIDGE_LISTEN": "127.0.0.1:19821",
            "BRIDGE_COOLDOWN_SECONDS": "0",
            "BRIDGE_DEADMAN_AFTER_SECONDS": "120",
            "BRIDGE_DELIVERY_MAX_AGE_SECONDS": "600",
            "BRIDGE_AUTO_MIGRATE": "false",
            "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/XXXX",
        }
    )
    assert config.database_url == ""
    assert config.state_dir == tmp_path
    assert config.webhook_token == "s3cret-s3cret-s3cret"
    assert config.retention_days == 30
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 19821)
    assert config.cooldown_seconds == 0
    assert config.deadman_after_seconds == 120
    assert config.retry.max_age_seconds == 600
    assert config.auto_migrate is False
    assert config.channels.enabled == ("slack",)
    assert "XXXX" not in repr(config)  # the webhook URL is a credential


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "mysql://db/x"),
        ("RETENTION_DAYS", "ninety"),
        ("RETENTION_DAYS", "0"),
        ("BRIDGE_LISTEN", "9821"),
        ("BRIDGE_MAX_BODY_BYTES", "10"),
        ("BRIDGE_AUTO_MIGRATE", "maybe"),
        ("BRIDGE_RATE_LIMITS", "sms=lots"),
        ("BRIDGE_CONSOLE_WORKING_HOURS", "weekdays 9-5"),
        ("BRIDGE_CONSOLE_WORKING_HOURS", "mon-fri 18:00-09:00"),
    ],
)
def test_bad_values_name_the_variable(name, value):
    with pytest.raises(ConfigError, match=name.split("_URL")[0]):
        BridgeConfig.from_env({name: value})
