"""``passiton-monitoring token create NAME --user USER [--role R] [--organizations A,B]
[--expires 30d]``, ``token revoke NAME [--user USER]`` and ``token list [--user USER]``.

``create`` prints the new token alone on standard output (``TOKEN=$(passiton-monitoring token
create ci --user alice)``), once: only its SHA-256 is stored (``console/api/tokens.py`` says
why that hash suffices). Its role defaults to the user's and may not exceed it; its
organizations default to the user's and must lie within them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime, timedelta
from typing import TextIO, cast

from bridge.config import BridgeConfig
from bridge.storage import Storage, StorageUnavailable, open_database
from bridge.storage.console import ROLES, Scope
from bridge.storage.console_api import ApiStore, ApiToken, TokenExists
from console.api.tokens import (
    display_prefix,
    expiry,
    new_token,
    parse_age,
    token_hash,
    token_rights,
)
from console.auth import valid_username
from console.forms import FormError, valid_organization


class TokenProblem(Exception):
    """What the operator asked cannot be done; the message says why."""


def configure_token(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="what", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a personal API token and print it (once)")
    create.add_argument("name", help="the token's name (unique among the user's live tokens)")
    create.add_argument("--user", required=True, help="the console user it acts as")
    create.add_argument("--role", choices=ROLES, help="at most the user's (default: the user's)")
    create.add_argument(
        "--organizations", default="", metavar="A,B",
        help="limit it to these organizations (within the user's; default: the user's)",
    )  # fmt: skip
    create.add_argument(
        "--expires", default="", metavar="30d", help="m, h, d or w (default: never)"
    )
    revoke = sub.add_parser("revoke", help="revoke a token by name")
    revoke.add_argument("name")
    revoke.add_argument("--user", default="", help="whose (needed when several users have one)")
    listing = sub.add_parser("list", help="tokens, with role, organizations, expiry and last use")
    listing.add_argument("--user", default="")


def _tokens(storage: Storage) -> ApiStore:
    return cast(ApiStore, storage.console())


async def create_token(
    storage: Storage,
    name: str,
    username: str,
    role: str | None,
    organizations: Scope,
    age: timedelta | None,
    now: datetime,
) -> tuple[str, ApiToken]:
    """The new token (to show once) and its row."""
    user = await storage.console().get_user(username)
    if user is None:
        raise TokenProblem(f"no console user {username!r} (user add first)")
    try:
        role, scope = token_rights(user, role, organizations)
    except ValueError as exc:
        raise TokenProblem(str(exc)) from None
    token = new_token()
    try:
        row = await _tokens(storage).create_token(
            username, name, role, scope, token_hash(token), display_prefix(token), now,
            expiry(now, age),
        )  # fmt: skip
    except TokenExists:
        raise TokenProblem(f"{username} already has a token {name!r} (revoke it first)") from None
    return token, row


async def revoke_token(storage: Storage, name: str, username: str, now: datetime) -> str:
    """Revoke the live token of that name (of that user); whose it was."""
    live = [
        t
        for t in await _tokens(storage).tokens(username or None)
        if t.name == name and t.revoked_at is None
    ]
    if not live:
        raise TokenProblem(f"no live token {name!r}" + (f" of {username}" if username else ""))
    if len({t.username for t in live}) > 1:
        raise TokenProblem(f"several users have a token {name!r}: say whose with --user")
    await _tokens(storage).revoke_token(live[0].username, name, now)
    return live[0].username


def describe(token: ApiToken, now: datetime) -> str:
    state = "revoked" if token.revoked_at else "live" if token.live(now) else "expired"
    orgs = ",".join(token.organizations) if token.organizations is not None else "*"
    stamp = "%Y-%m-%d %H:%M"
    expires = token.expires_at.strftime(stamp) if token.expires_at else "never"
    used = token.last_used_at.strftime(stamp) if token.last_used_at else "never"
    return (
        f"{token.username}\t{token.name}\t{token.prefix}…\t{token.role}\t{orgs}\t{state}"
        f"\texpires {expires}\tlast used {used}"
    )


def _organizations(text: str) -> Scope:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(dict.fromkeys(valid_organization(n) for n in names)) if names else None


async def _run(config: BridgeConfig, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    now = datetime.now(UTC)
    async with open_database(config.database_url, config.state_dir) as storage:
        if config.auto_migrate:
            await storage.migrate()
        if args.what == "create":
            age = parse_age(args.expires) if args.expires else None
            token, row = await create_token(
                storage, args.name, args.user, args.role, _organizations(args.organizations),
                age, now,
            )  # fmt: skip
            print(token, file=out)
            print(f"{describe(row, now)}\n(shown once: it cannot be read back)", file=err)
        elif args.what == "revoke":
            whose = await revoke_token(storage, args.name, args.user, now)
            print(f"token {args.name} of {whose} revoked", file=err)
        else:
            for row in await _tokens(storage).tokens(args.user or None):
                print(describe(row, now), file=out)
    return 0


def cmd_token(
    args: argparse.Namespace,
    config: BridgeConfig,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if args.what != "list" and not valid_username(args.name):
        print("token name: 1-64 letters, digits, '.', '_', '@' or '-'", file=err)
        return 2
    try:
        if args.what == "create":
            if args.expires:
                parse_age(args.expires)
            _organizations(args.organizations)
        return asyncio.run(_run(config, args, out, err))
    except (ValueError, TokenProblem) as exc:
        print(f"token {args.what}: {exc}", file=err)
        return 2
    except FormError as exc:
        print("; ".join(exc.problems), file=err)
        return 2
    except StorageUnavailable as exc:
        print(f"database unavailable: {exc}", file=err)
        return 1
