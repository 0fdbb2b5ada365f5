"""``passiton-monitoring user add NAME --role viewer|responder|admin [--organizations A,B]``.

The password comes from a prompt (asked twice) on a terminal, or from the first line of
standard input otherwise (``echo "$PW" | passiton-monitoring user add ...``); it is stored as
an argon2 hash in the alert database. Re-running it for an existing user changes the password,
role and organizations and ends that user's sessions. ``--organizations`` limits the user to
the incidents touching those organizations, their alerts and their settings (an admin so
limited is an organization admin: their organizations' settings, not the console's users).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from typing import TextIO

from bridge.config import BridgeConfig
from bridge.storage import StorageUnavailable, open_database
from bridge.storage.console import ROLES
from console.auth import hash_password, valid_username
from console.forms import FormError, parse_organizations
from console.passwords import MIN_LENGTH, password_problems

MIN_PASSWORD = MIN_LENGTH


def configure_user(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="create or update a console user")
    add.add_argument("name", help="user name (letters, digits, . _ @ -)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--organizations",
        default="",
        metavar="A,B",
        help="comma-separated: the user sees only these organizations' incidents, alerts and"
        " settings (an admin so limited tunes only theirs)"
        " (default: every organization)",
    )


def read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


async def add_user(
    config: BridgeConfig,
    name: str,
    role: str,
    password: str,
    organizations: tuple[str, ...] | None = None,
) -> None:
    async with open_database(config.database_url, config.state_dir) as storage:
        if config.auto_migrate:
            await storage.migrate()
        await storage.console().upsert_user(
            name, hash_password(password), role, datetime.now(UTC), organizations
        )


def cmd_user(args: argparse.Namespace, config: BridgeConfig, stdin: TextIO = sys.stdin) -> int:
    if not valid_username(args.name):
        print("user name: 1-64 letters, digits, '.', '_', '@' or '-'", file=sys.stderr)
        return 2
    try:
        organizations = parse_organizations(getattr(args, "organizations", "") or "")
    except FormError as exc:
        print("; ".join(exc.problems), file=sys.stderr)
        return 2
    try:
        password = read_password(stdin)
    except (ValueError, EOFError) as exc:
        print(f"no password: {exc}", file=sys.stderr)
        return 2
    problems = password_problems(args.name, password)
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 2
    try:
        asyncio.run(add_user(config, args.name, args.role, password, organizations))
    except StorageUnavailable as exc:
        print(f"database unavailable: {exc}", file=sys.stderr)
        return 1
    limited = f", limited to {', '.join(organizations)}" if organizations else ""
    print(f"user {args.name} saved with role {args.role}{limited}")
    return 0
