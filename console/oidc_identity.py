"""Who an ID token's claims say a person is, for the console: their name, role and
organizations (``OIDC_ROLE_CLAIM``, ``OIDC_ROLE_MAP``, ``OIDC_ORGANIZATIONS_CLAIM``,
``OIDC_ALLOWED_DOMAINS``), read again at every sign-in so that what the provider removed is
removed here. Anything the mapping cannot place is refused (403), never given a default the
configuration did not say."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bridge.oidc_config import ANY, OidcConfig
from bridge.storage.console import Scope
from bridge.storage.console_oidc import OidcIdentity
from console.auth import RANK, valid_username
from console.forms import ORGANIZATION
from console.oidc import OidcError

MAX_ORGANIZATIONS = 1000


@dataclass(frozen=True)
class Mapped:
    # an admin limited to organizations stays an admin: an organization admin, who tunes
    # their organizations' settings and not the console's users (console/settings.py)
    identity: OidcIdentity


def claim_at(claims: dict[str, Any], path: str) -> Any:
    """The claim at a dotted path (``app_metadata.roles``), or None."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def values_of(value: Any) -> list[str]:
    """A claim as a list of strings: a string is one value, a list its strings."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def _verified(claims: dict[str, Any]) -> bool:
    return claims.get("email_verified") in (True, "true")


def username_of(claims: dict[str, Any]) -> str:
    """The verified e-mail address, else ``preferred_username``."""
    email = claims.get("email")
    if isinstance(email, str) and _verified(claims) and valid_username(email.lower()):
        return email.lower()
    name = claims.get("preferred_username")
    if isinstance(name, str) and valid_username(name):
        return name
    raise OidcError(
        403,
        "no_name",
        "The sign-in provider gave no verified e-mail address or user name the console can use"
        " (1-64 letters, digits, '.', '_', '@' or '-').",
    )


def role_of(config: OidcConfig, claims: dict[str, Any]) -> str | None:
    """The highest role the claim's values map to; ``*``'s for anyone matching none."""
    values = set(values_of(claim_at(claims, config.role_claim)))
    matched = [role for value, role in config.role_map if value != ANY and value in values]
    if matched:
        return max(matched, key=RANK.__getitem__)
    return next((role for value, role in config.role_map if value == ANY), None)


def organizations_of(config: OidcConfig, claims: dict[str, Any]) -> Scope:
    if not config.organizations_claim:
        return None
    values = values_of(claim_at(claims, config.organizations_claim))
    if ANY in values:
        return None
    if not values:
        raise OidcError(
            403,
            "no_organizations",
            f"Your account at the sign-in provider names no organization"
            f" (claim {config.organizations_claim}); ask an administrator to add one.",
        )
    bad = [v for v in values if not ORGANIZATION.match(v)]
    if bad or len(values) > MAX_ORGANIZATIONS:
        raise OidcError(
            403,
            "bad_organizations",
            f"The claim {config.organizations_claim} holds what is not a list of organization"
            f" ids (at most {MAX_ORGANIZATIONS} of 1-128 letters, digits, '_', '.', ':', '-').",
        )
    return tuple(dict.fromkeys(values))


def check_domain(config: OidcConfig, claims: dict[str, Any]) -> None:
    if not config.allowed_domains:
        return
    email = claims.get("email")
    domain = email.rpartition("@")[2].lower() if isinstance(email, str) else ""
    if not _verified(claims) or domain not in config.allowed_domains:
        raise OidcError(
            403,
            "domain",
            "Only verified e-mail addresses of "
            + ", ".join(config.allowed_domains)
            + " may sign in here.",
        )


def subject_of(claims: dict[str, Any]) -> str:
    subject = claims.get("sub")
    if not isinstance(subject, str) or not 0 < len(subject) <= 255:
        raise OidcError(403, "id_token", "The sign-in provider's ID token has no usable subject.")
    return subject


def map_identity(config: OidcConfig, issuer: str, claims: dict[str, Any]) -> Mapped:
    """The console user the claims make (OidcError 403 when they make none)."""
    subject = subject_of(claims)
    check_domain(config, claims)
    username = username_of(claims)
    role = role_of(config, claims)
    if role is None:
        raise OidcError(
            403,
            "no_role",
            f"Your account at the sign-in provider has no console role: none of its"
            f" {config.role_claim} is mapped (OIDC_ROLE_MAP). Ask an administrator.",
        )
    organizations = organizations_of(config, claims)
    return Mapped(OidcIdentity(issuer, subject, username, role, organizations))
