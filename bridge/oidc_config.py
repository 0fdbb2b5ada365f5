"""The console's OpenID Connect sign-in settings (``OIDC_*``), parsed and checked at start-up.

The bridge only reads them (``BridgeConfig.oidc``); the console (``console/oidc*.py``) signs
people in with them. Every error names its variable, so a wrong role map stops the bridge at
start-up instead of refusing everyone at their first sign-in.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bridge.storage.console import ROLES
from passiton_common.settings import ConfigError, check_url, read_csv, read_text

ANY = "*"  # OIDC_ROLE_MAP: anyone else the provider signs in; in the organizations claim: all
_OPTIONAL = (
    "OIDC_CLIENT_ID",
    "OIDC_CLIENT_SECRET",
    "OIDC_ROLE_MAP",
    "OIDC_ORGANIZATIONS_CLAIM",
    "OIDC_ALLOWED_DOMAINS",
    "OIDC_PROVIDER_NAME",
)


@dataclass(frozen=True)
class OidcConfig:
    """One OpenID provider: where it is, who the console is to it, how its claims map."""

    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ("openid", "email", "profile")
    role_claim: str = "groups"
    # (claim value, role) in the order written; ANY as the value: everyone else
    role_map: tuple[tuple[str, str], ...] = ((ANY, "viewer"),)
    organizations_claim: str = ""  # empty: every user sees every organization
    allowed_domains: tuple[str, ...] = ()  # lower-case; empty: any
    provider_name: str = ""

    @property
    def display_name(self) -> str:
        return self.provider_name or urlsplit(self.issuer).hostname or self.issuer


def loopback(url: str) -> bool:
    """Whether the URL's host is this machine (the only place plain http is accepted)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(name: str, url: str) -> None:
    """An http(s) URL with a host; https unless on a loopback address."""
    check_url(name, url)
    if urlsplit(url).scheme != "https" and not loopback(url):
        raise ConfigError(f"{name} must be https (plain http only on a loopback address)")


def parse_role_map(text: str) -> tuple[tuple[str, str], ...]:
    """``engineers=responder,*=viewer`` -> ((value, role), ...); ConfigError naming the entry.

    Entries are separated by commas, or by semicolons when the text holds one (for values
    such as LDAP group names that contain commas); a value's role is after its last ``=``."""
    separator = ";" if ";" in text else ","
    entries: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(separator))):
        value, sep, role = item.rpartition("=")
        value, role = value.strip(), role.strip().lower()
        if not sep or not value:
            raise ConfigError(
                f"OIDC_ROLE_MAP entries look like engineers=responder or *=viewer, got {item!r}"
            )
        if role not in ROLES:
            raise ConfigError(
                f"OIDC_ROLE_MAP: {item!r}: the role must be {', '.join(ROLES)}, got {role!r}"
            )
        if entries.get(value, role) != role:
            raise ConfigError(f"OIDC_ROLE_MAP: {value!r} is mapped twice, to different roles")
        entries[value] = role
    if not entries:
        raise ConfigError("OIDC_ROLE_MAP is required when OIDC_ISSUER is set")
    return tuple(entries.items())


def read_oidc(env: Mapping[str, str]) -> OidcConfig | None:
    """The OIDC settings, or None when ``OIDC_ISSUER`` is unset (and nothing else is)."""
    issuer = read_text(env, "OIDC_ISSUER")  # exactly as the provider spells it (discovery)
    if not issuer:
        for name in _OPTIONAL:
            if env.get(name, "").strip():
                raise ConfigError(f"OIDC_ISSUER is required when {name} is set")
        return None
    check_endpoint("OIDC_ISSUER", issuer)
    client_id = read_text(env, "OIDC_CLIENT_ID")
    if not client_id:
        raise ConfigError("OIDC_CLIENT_ID is required when OIDC_ISSUER is set")
    scopes = tuple(dict.fromkeys(read_text(env, "OIDC_SCOPES").split()))
    if "openid" not in scopes:
        raise ConfigError(f"OIDC_SCOPES must hold openid, got {' '.join(scopes)!r}")
    role_claim = read_text(env, "OIDC_ROLE_CLAIM")
    if any(not part for part in role_claim.split(".")):
        raise ConfigError(f"OIDC_ROLE_CLAIM: a claim name or a dotted path, got {role_claim!r}")
    organizations_claim = read_text(env, "OIDC_ORGANIZATIONS_CLAIM")
    if organizations_claim and any(not part for part in organizations_claim.split(".")):
        raise ConfigError(
            f"OIDC_ORGANIZATIONS_CLAIM: a claim name or a dotted path, got {organizations_claim!r}"
        )
    domains = tuple(d.lower().lstrip("@") for d in read_csv(env, "OIDC_ALLOWED_DOMAINS"))
    bad = [d for d in domains if "." not in d or "@" in d or " " in d]
    if bad:
        raise ConfigError(f"OIDC_ALLOWED_DOMAINS: e-mail domains like example.org, got {bad[0]!r}")
    return OidcConfig(
        issuer=issuer,
        client_id=client_id,
        client_secret=read_text(env, "OIDC_CLIENT_SECRET"),
        scopes=scopes,
        role_claim=role_claim,
        role_map=parse_role_map(read_text(env, "OIDC_ROLE_MAP")),
        organizations_claim=organizations_claim,
        allowed_domains=domains,
        provider_name=read_text(env, "OIDC_PROVIDER_NAME"),
    )
