"""``OIDC_*``: parsed once at start-up into ``BridgeConfig.oidc``; every mistake stops the bridge
with the variable named (a wrong role map must not refuse everyone at their first sign-in)."""

from __future__ import annotations

import pytest

from bridge.config import BridgeConfig
from bridge.oidc_config import OidcConfig, parse_role_map, read_oidc
from passiton_common.settings import ConfigError

GOOD = {
    "OIDC_ISSUER": "https://accounts.example.org",
    "OIDC_CLIENT_ID": "console",
    "OIDC_CLIENT_SECRET": "s3cret-from-the-provider",
    "OIDC_ROLE_MAP": "oncall-admins=admin, engineers=responder,*=viewer",
}


def test_unset_is_passwords_only() -> None:
    assert read_oidc({}) is None
    assert BridgeConfig.from_env({}).oidc is None


def test_a_full_configuration() -> None:
    config = BridgeConfig.from_env(
        GOOD
        | {
            "OIDC_ROLE_CLAIM": "app_metadata.roles",
            "OIDC_ORGANIZATIONS_CLAIM": "organizations",
            "OIDC_ALLOWED_DOMAINS": "Example.org, @passiton.example",
            "OIDC_SCOPES": "openid email groups",
        }
    ).oidc
    assert config == OidcConfig(
        issuer="https://accounts.example.org",
        client_id="console",
        client_secret="s3cret-from-the-provider",
        scopes=("openid", "email", "groups"),
        role_claim="app_metadata.roles",
        role_map=(("oncall-admins", "admin"), ("engineers", "responder"), ("*", "viewer")),
        organizations_claim="organizations",
        allowed_domains=("example.org", "passiton.example"),
    )
    assert "s3cret" not in repr(config)
    assert config.display_name == "accounts.example.org"


def test_role_map_entries_with_commas_are_separated_by_semicolons() -> None:
    assert parse_role_map("cn=ops,ou=groups=admin; cn=dev,ou=groups=responder") == (
        ("cn=ops,ou=groups", "admin"),
        ("cn=dev,ou=groups", "responder"),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"OIDC_ROLE_MAP": "engineers=superuser"},
            "OIDC_ROLE_MAP: 'engineers=superuser': the role",
        ),
        ({"OIDC_ROLE_MAP": "engineers"}, "OIDC_ROLE_MAP entries look like"),
        ({"OIDC_ROLE_MAP": "a=admin,a=viewer"}, "OIDC_ROLE_MAP: 'a' is mapped twice"),
        ({"OIDC_ROLE_MAP": ""}, "OIDC_ROLE_MAP is required when OIDC_ISSUER is set"),
        ({"OIDC_CLIENT_ID": ""}, "OIDC_CLIENT_ID is required when OIDC_ISSUER is set"),
        ({"OIDC_ISSUER": "http://login.example.org"}, "OIDC_ISSUER must be https"),
        ({"OIDC_ISSUER": "accounts.example.org"}, "OIDC_ISSUER must be an http(s) URL"),
        ({"OIDC_SCOPES": "email profile"}, "OIDC_SCOPES must hold openid"),
        ({"OIDC_ROLE_CLAIM": "app_metadata."}, "OIDC_ROLE_CLAIM: a claim name"),
        ({"OIDC_ALLOWED_DOMAINS": "example"}, "OIDC_ALLOWED_DOMAINS: e-mail domains"),
        ({"OIDC_ISSUER": ""}, "OIDC_ISSUER is required when OIDC_CLIENT_ID is set"),
    ],
)
def test_mistakes_stop_the_start_naming_the_variable(change, message) -> None:
    with pytest.raises(ConfigError) as raised:
        BridgeConfig.from_env(GOOD | change)
    assert message in str(raised.value)


def test_plain_http_only_on_loopback() -> None:
    for issuer in ("http://127.0.0.1:8080", "http://localhost:9000/realms/x", "http://[::1]:1"):
        assert read_oidc(GOOD | {"OIDC_ISSUER": issuer}) is not None
