"""Personal API tokens: ``pio_`` and 32 random bytes in URL-safe base64, shown once.

Only the SHA-256 of the token is stored. A slow hash (argon2, as for passwords) protects
guessable secrets; a token is 256 random bits, so a fast hash of it cannot be reversed or
brute-forced from a leaked table, and it lets the API find the row by its hash (an index)
without a slow check on every request. The stored hash is compared in constant time as well.

A token's rights are its role and organizations, never more than its user's *now*: the lower of
the two roles, and the token's organizations within the user's (a user limited later limits
their tokens too).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from bridge.storage.console import ConsoleUser, Scope
from bridge.storage.console_api import ApiToken
from console.auth import RANK

PREFIX = "pio_"
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^pio_[A-Za-z0-9_-]{43}$")
_AGE = re.compile(r"^(\d{1,5})([mhdw])$")
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_AGE = timedelta(days=3650)


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    """What lists show of a token (enough to tell tokens apart, useless to an attacker)."""
    return token[: len(PREFIX) + 6]


def well_formed(token: str) -> bool:
    return bool(_TOKEN.match(token))


def same_hash(stored: str, computed: str) -> bool:
    return hmac.compare_digest(stored.encode(), computed.encode())


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``2w`` -> a timedelta (at most ten years)."""
    match = _AGE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r}: a number and m, h, d or w, e.g. 30d")
    age = timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
    if age > MAX_AGE:
        raise ValueError(f"{text!r}: at most 3650d")
    return age


def lower_role(a: str, b: str) -> str:
    return a if RANK.get(a, -1) <= RANK.get(b, -1) else b


def narrower(token: Scope, user: Scope) -> Scope:
    """The organizations a token of a user may see now."""
    if token is None:
        return user
    if user is None:
        return token
    return tuple(o for o in token if o in user)


@dataclass(frozen=True)
class Principal:
    """Who calls the API: the token's user with the token's (current) rights."""

    username: str
    token_name: str
    role: str
    organizations: Scope

    def sees(self, organization_id: str | None) -> bool:
        return self.organizations is None or organization_id in self.organizations


def principal(token: ApiToken, user: ConsoleUser) -> Principal:
    return Principal(
        user.username,
        token.name,
        lower_role(token.role, user.role),
        narrower(token.organizations, user.organizations),
    )


def token_rights(user: ConsoleUser, role: str | None, organizations: Scope) -> tuple[str, Scope]:
    """The role and organizations of a new token of ``user``; ValueError when they exceed
    the user's."""
    role = role or user.role
    if RANK[role] > RANK[user.role]:
        raise ValueError(f"role {role} is above {user.username}'s ({user.role})")
    if organizations is None:
        return role, user.organizations
    if user.organizations is not None:
        outside = [o for o in organizations if o not in user.organizations]
        if outside:
            raise ValueError(f"{user.username} does not see {', '.join(outside)}")
    return role, organizations


def expiry(now: datetime, age: timedelta | None) -> datetime | None:
    return None if age is None else now + age
