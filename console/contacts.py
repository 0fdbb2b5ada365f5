"""People's phone numbers and e-mail addresses as a role may read them: in full for a
responder or an admin (within their organizations), masked for a viewer (``+1•••••0001``,
``a•••@example.org``): enough to tell two recipients apart, not to call or write to them."""

from __future__ import annotations

from collections.abc import Mapping

from console.auth import allowed

BULLETS = "•••"


def mask_phone(number: str) -> str:
    """``+15550000001`` → ``+1•••••0001`` (the country's first digit and the last four)."""
    if len(number) <= 6:
        return BULLETS
    return f"{number[:2]}•••••{number[-4:]}"


def mask_email(address: str) -> str:
    """``alice@example.org`` → ``a•••@example.org`` (the domain tells whose it is)."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        return BULLETS
    return f"{local[0]}{BULLETS}@{domain}"


def mask(kind: str, value: str) -> str:
    if kind in ("sms", "voice"):
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    return BULLETS


def reads_contacts(role: str) -> bool:
    """Whether ``role`` reads recipients in full (a viewer does not)."""
    return allowed(role, "responder")


def recipients_for(role: str, recipients: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """``recipients`` ({"email": [...], "sms": [...]}) as ``role`` may read them."""
    if reads_contacts(role):
        return {kind: list(values) for kind, values in recipients.items()}
    return {kind: [mask(kind, v) for v in values] for kind, values in recipients.items()}
