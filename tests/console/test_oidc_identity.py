"""The claims of a validated ID token to a console user (``console/oidc_identity.py``): the
name, the highest mapped role, the organizations, the allowed domains; what cannot be placed is
a 403 naming why."""

from __future__ import annotations

import pytest

from bridge.oidc_config import OidcConfig, parse_role_map
from console.oidc import OidcError
from console.oidc_identity import map_identity

ISSUER = "https://login.example.org"
CONFIG = OidcConfig(
    issuer=ISSUER,
    client_id="console",
    role_claim="app_metadata.roles",
    role_map=parse_role_map("ops=admin,dev=responder,*=viewer"),
    organizations_claim="orgs",
    allowed_domains=("example.org",),
)
ADA = {
    "sub": "s-1",
    "email": "Ada@Example.org",
    "email_verified": True,
    "preferred_username": "ada",
    "app_metadata": {"roles": ["dev", "ops"]},
    "orgs": "*",
}


def refused(config: OidcConfig, claims: dict, reason: str) -> str:
    with pytest.raises(OidcError) as raised:
        map_identity(config, ISSUER, claims)
    assert raised.value.status == 403
    assert raised.value.reason == reason
    return raised.value.message


def test_the_highest_mapped_role_of_a_nested_claim_and_every_organization() -> None:
    mapped = map_identity(CONFIG, ISSUER, ADA)
    who = mapped.identity
    assert (who.issuer, who.subject, who.username) == (ISSUER, "s-1", "ada@example.org")
    assert (who.role, who.organizations) == ("admin", None)


def test_a_single_string_claim_and_anyone_else() -> None:
    one = map_identity(CONFIG, ISSUER, ADA | {"app_metadata": {"roles": "dev"}, "orgs": ["o1"]})
    assert (one.identity.role, one.identity.organizations) == ("responder", ("o1",))
    other = map_identity(CONFIG, ISSUER, ADA | {"app_metadata": {"roles": ["sales"]}})
    assert other.identity.role == "viewer"  # *=viewer


def test_an_admin_limited_to_organizations_stays_an_organization_admin() -> None:
    mapped = map_identity(CONFIG, ISSUER, ADA | {"orgs": ["o1", "o2", "o1"]})
    assert (mapped.identity.role, mapped.identity.organizations) == ("admin", ("o1", "o2"))


def test_the_name_is_the_verified_email_else_the_user_name() -> None:
    no_domains = OidcConfig(issuer=ISSUER, client_id="c", role_map=parse_role_map("*=viewer"))
    unverified = ADA | {"email_verified": False}
    assert map_identity(no_domains, ISSUER, unverified).identity.username == "ada"
    nameless = unverified | {"preferred_username": "a b"}
    assert "no verified e-mail address" in refused(no_domains, nameless, "no_name")


def test_what_the_mapping_cannot_place_is_refused() -> None:
    no_default = OidcConfig(
        issuer=ISSUER, client_id="c", role_claim="groups", role_map=parse_role_map("ops=admin")
    )
    assert "no console role" in refused(no_default, ADA | {"groups": ["dev"]}, "no_role")
    assert "names no organization" in refused(CONFIG, ADA | {"orgs": []}, "no_organizations")
    assert "names no organization" in refused(
        CONFIG, {k: v for k, v in ADA.items() if k != "orgs"}, "no_organizations"
    )
    refused(CONFIG, ADA | {"orgs": ["org one"]}, "bad_organizations")
    assert "example.org" in refused(CONFIG, ADA | {"email": "ada@evil.example"}, "domain")
    refused(CONFIG, ADA | {"email_verified": False}, "domain")
    refused(CONFIG, ADA | {"sub": ""}, "id_token")
