"""``passiton-monitoring oncall …``: check the on-call file, say who is on call, manage overrides.

- ``oncall check [FILE]``: reads ONCALL_CONFIG (or FILE), prints every error (exit 1) or a
  short summary (exit 0).
- ``oncall who [--at TIME] [--no-overrides]``: per schedule who is on call and who is next,
  times in the schedule's zone. Overrides come from the database (DATABASE_URL, or the
  embedded PostgreSQL); when it cannot be reached the rotations alone are shown with a warning
  on stderr (exit 0: knowing the rotation beats knowing nothing mid-incident);
  ``--no-overrides`` skips the database.
- ``oncall override add|swap|list|remove``: the overrides in the database; ``add`` and ``swap``
  check the ids against the on-call file.

TIME is ISO 8601 (``2026-12-07T09:00+01:00``, ``2026-12-07``) or ``now``; without an offset
it is read in the schedule's zone (``override add|swap``) or in UTC (``who --at``).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TextIO

import asyncpg

from bridge.config import BridgeConfig
from bridge.oncall.calendar import calendar_secret, feed_url
from bridge.oncall.config import OncallConfig, OncallConfigError, Schedule, load_oncall
from bridge.oncall.schedule import (
    Override,
    Shift,
    current_shifts,
    first_handoff,
    next_handoff,
    shifts,
)
from bridge.oncall.values import WEEKDAYS
from bridge.storage import StorageUnavailable, open_database
from passiton_common.settings import read_text

_FAR = datetime(9999, 1, 1, tzinfo=UTC)
# the overrides `who` reads around the time asked about (the next hand-off is found within)
_WHO_BEFORE, _WHO_AFTER = timedelta(days=60), timedelta(days=400)


def configure_oncall(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="oncall_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate the on-call file (ONCALL_CONFIG or FILE)")
    check.add_argument("file", nargs="?", type=Path, help="default: ONCALL_CONFIG")
    who = sub.add_parser("who", help="who is on call now (or at --at) and who is next")
    who.add_argument(
        "--at", default="now", metavar="TIME", help="ISO 8601 (UTC unless it says) or now"
    )
    who.add_argument(
        "--no-overrides", action="store_true", help="the rotations alone, without the database"
    )
    override = sub.add_parser("override", help="on-call overrides: add, swap, list, remove")
    actions = override.add_subparsers(dest="override_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="cover someone's time (--replaces) or add someone")
    add.add_argument("--schedule", required=True)
    add.add_argument("--person", required=True, help="who is on call")
    add.add_argument("--replaces", help="whose time they cover (default: in addition)")
    add.add_argument("--start", required=True, metavar="TIME")
    add.add_argument("--end", required=True, metavar="TIME")
    add.add_argument("--reason", default="")
    add.add_argument("--by", help="who made it (default: the login name)")
    swap = actions.add_parser(
        "swap", help="two covers: --person takes --with's span, --with takes --person's"
    )
    swap.add_argument("--schedule", required=True)
    swap.add_argument("--person", required=True)
    swap.add_argument("--with", dest="other", required=True, metavar="PERSON")
    swap.add_argument("--start", required=True, metavar="TIME", help="--person covers --with")
    swap.add_argument("--end", required=True, metavar="TIME")
    swap.add_argument("--other-start", required=True, metavar="TIME", help="and back")
    swap.add_argument("--other-end", required=True, metavar="TIME")
    swap.add_argument("--reason", default="")
    swap.add_argument("--by")
    listing = actions.add_parser("list", help="overrides not ended yet (--all: every one)")
    listing.add_argument("--schedule")
    listing.add_argument("--all", action="store_true")
    remove = actions.add_parser("remove", help="delete an override by its id")
    remove.add_argument("id", type=int)
    sub.add_parser(
        "feeds",
        help="print each schedule's and person's iCalendar feed URL (BRIDGE_PUBLIC_URL)",
    )


def cmd_oncall(
    args: argparse.Namespace,
    env: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    env = os.environ if env is None else env
    out, err = out or sys.stdout, err or sys.stderr
    if args.oncall_command == "check":
        return check(args.file, env, out)
    try:
        config = BridgeConfig.from_env(env)
    except ValueError as exc:
        print(f"configuration error: {exc}", file=err)
        return 2
    try:
        if args.oncall_command == "feeds":
            return feeds(config, out, err)
        if args.oncall_command == "who":
            return asyncio.run(who(config, args, out, err))
        return asyncio.run(_override(config, args, out, err))
    except (StorageUnavailable, asyncpg.PostgresError) as exc:
        print(f"database unavailable: {exc}", file=err)
        return 1


def feeds(config: BridgeConfig, out: TextIO, err: TextIO) -> int:
    """The feed URLs to subscribe to (served by the public listener)."""
    if config.oncall is None or not config.public_url or not config.webhook_token:
        print("feeds need ONCALL_CONFIG, BRIDGE_PUBLIC_URL and BRIDGE_WEBHOOK_TOKEN", file=err)
        return 1
    secret = calendar_secret(config.webhook_token)
    for kind, ids in (("schedule", config.oncall.schedules), ("person", config.oncall.people)):
        for ident in ids:
            print(f"{kind}:{ident}\t{feed_url(config.public_url, secret, kind, ident)}", file=out)
    return 0


# -- check ------------------------------------------------------------------------------------


def check(file: Path | None, env: Mapping[str, str], out: TextIO) -> int:
    path = file or (Path(value) if (value := read_text(env, "ONCALL_CONFIG")) else None)
    if path is None:
        print("ONCALL_CONFIG is not set (and no FILE given): nothing to check", file=out)
        return 1
    try:
        config = load_oncall(path)
    except OncallConfigError as exc:
        for error in exc.errors:
            print(error, file=out)
        print(f"{len(exc.errors)} error(s) in {path}", file=out)
        return 1
    print(
        f"{path}: ok: {len(config.people)} people, {len(config.schedules)} schedules,"
        f" {len(config.policies)} escalation policies, {len(config.routes)} routes",
        file=out,
    )
    for schedule in config.schedules.values():
        print(f"  {describe(config, schedule)}", file=out)
    if not config.routes:
        print("  note: no routes, so no incident is paged through these policies", file=out)
    return 0


def describe(config: OncallConfig, schedule: Schedule) -> str:
    rotation = schedule.rotation
    at = f"{rotation.handoff:%H:%M}"
    if rotation.type == "weekly" and rotation.handoff_weekday is not None:
        at = f"{WEEKDAYS[rotation.handoff_weekday]} {at}"
    elif rotation.type == "hours":
        at = f"every {rotation.shift_hours}h from {at}"
    first = first_handoff(config, schedule.id)
    return (
        f"{schedule.id}: {rotation.type} ({at} {schedule.time_zone.key}),"
        f" {' -> '.join(rotation.people)}, first hand-off {when(first, schedule.time_zone)}"
    )


def when(at: datetime, zone: tzinfo) -> str:
    return f"{at.astimezone(zone):%a %Y-%m-%d %H:%M %Z}"


def parse_time(text: str, zone: tzinfo, now: datetime) -> datetime:
    """ISO 8601 or ``now``; naive times are in ``zone``; ValueError saying what it expected."""
    if text.strip().lower() == "now":
        return now
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 time like 2026-12-07T09:00+01:00 (or now), got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


# -- who --------------------------------------------------------------------------------------


async def who(config: BridgeConfig, args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    oncall = config.oncall
    if oncall is None:
        print("ONCALL_CONFIG is not set: no schedules", file=err)
        return 1
    try:
        at = parse_time(args.at, UTC, datetime.now(UTC))
    except ValueError as exc:
        print(f"--at: {exc}", file=err)
        return 2
    overrides: list[Override] = []
    source = "rotations only: --no-overrides"
    if not args.no_overrides:
        try:
            async with open_database(config.database_url, config.state_dir) as storage:
                if config.auto_migrate:
                    await storage.migrate()
                overrides = await storage.overrides(at - _WHO_BEFORE, at + _WHO_AFTER)
            source = f"{len(overrides)} override(s) from the database"
        except (StorageUnavailable, asyncpg.PostgresError) as exc:
            print(f"warning: overrides not read (database unavailable: {exc})", file=err)
            source = "rotations only: the database could not be read"
    print(f"on call at {when(at, UTC)} ({source})", file=out)
    for schedule in oncall.schedules.values():
        zone = schedule.time_zone
        print(f"{schedule.id} ({zone.key}, {schedule.rotation.type})", file=out)
        first = first_handoff(oncall, schedule.id)
        for shift in current_shifts(oncall, schedule.id, at, overrides):
            since = f"since {when(shift.start, zone)}, " if at >= first or shift.override_id else ""
            print(
                f"  now:  {_person(oncall, shift, overrides)} {since}until {when(shift.end, zone)}",
                file=out,
            )
        if at < first:
            print(
                f"  (the rotation starts {when(first, zone)}; its first person until then)",
                file=out,
            )
        following = next_handoff(oncall, schedule.id, at, overrides)
        if following is not None:
            print(
                f"  next: {_person(oncall, following, overrides)}"
                f" from {when(following.start, zone)}",
                file=out,
            )
    return 0


def _person(config: OncallConfig, shift: Shift, overrides: list[Override]) -> str:
    person = config.people.get(shift.person_id)
    name = f"{person.name} ({shift.person_id})" if person else shift.person_id
    if shift.override_id is None:
        return name
    override = next((o for o in overrides if o.id == shift.override_id), None)
    if override is not None and override.replaces:
        return f"{name} covering {override.replaces} (override {shift.override_id})"
    return f"{name} in addition (override {shift.override_id})"


# -- overrides --------------------------------------------------------------------------------


def _by(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return "cli"


def _check_ids(oncall: OncallConfig | None, schedule: str, people: list[str | None]) -> list[str]:
    if oncall is None:
        return ["ONCALL_CONFIG is not set: overrides name its schedules and people"]
    problems = []
    if schedule not in oncall.schedules:
        problems.append(f"unknown schedule {schedule!r} (known: {', '.join(oncall.schedules)})")
    problems.extend(
        f"unknown person {p!r} (known: {', '.join(oncall.people)})"
        for p in people
        if p is not None and p not in oncall.people
    )
    return problems


def _span(
    args: argparse.Namespace, zone: tzinfo, now: datetime, names: tuple[str, str]
) -> tuple[datetime, datetime]:
    start = parse_time(getattr(args, names[0]), zone, now)
    end = parse_time(getattr(args, names[1]), zone, now)
    if end <= start:
        raise ValueError(
            f"--{names[1].replace('_', '-')} must be after --{names[0].replace('_', '-')}"
        )
    return start, end


def _never_on_call(
    oncall: OncallConfig, schedule: str, person: str, span: tuple[datetime, datetime]
) -> bool:
    return not any(s.person_id == person for s in shifts(oncall, schedule, *span))


async def _override(
    config: BridgeConfig, args: argparse.Namespace, out: TextIO, err: TextIO
) -> int:
    oncall, now = config.oncall, datetime.now(UTC)
    action = args.override_command
    if action in ("add", "swap"):
        other = args.replaces if action == "add" else args.other
        problems = _check_ids(oncall, args.schedule, [args.person, other])
        if other is not None and other == args.person:
            problems.append(f"{args.person} cannot cover their own time")
        if problems or oncall is None:
            for problem in problems:
                print(problem, file=err)
            return 2
        zone = oncall.schedules[args.schedule].time_zone
        try:
            span = _span(args, zone, now, ("start", "end"))
            other_span = (
                _span(args, zone, now, ("other_start", "other_end")) if action == "swap" else span
            )
        except ValueError as exc:
            print(str(exc), file=err)
            return 2
        if other is not None and _never_on_call(oncall, args.schedule, other, span):
            print(
                f"warning: {other} is not on call on {args.schedule} in that span"
                " (per the rotation)",
                file=err,
            )
        if action == "swap" and _never_on_call(oncall, args.schedule, args.person, other_span):
            print(
                f"warning: {args.person} is not on call on {args.schedule} in the other span",
                file=err,
            )
    async with open_database(config.database_url, config.state_dir) as storage:
        if config.auto_migrate:
            await storage.migrate()
        if action == "add":
            made = [
                await storage.add_override(
                    args.schedule,
                    args.person,
                    *span,
                    replaces=args.replaces,
                    reason=args.reason,
                    created_by=_by(args),
                )
            ]
        elif action == "swap":
            made = list(
                await storage.add_swap(
                    args.schedule,
                    args.person,
                    args.other,
                    span,
                    other_span,
                    reason=args.reason,
                    created_by=_by(args),
                )
            )
        elif action == "list":
            found = await storage.overrides(
                datetime.min.replace(tzinfo=UTC) if args.all else now, _FAR, args.schedule
            )
            for override in found:
                print(_line(oncall, override), file=out)
            if not found:
                print("no overrides", file=out)
            return 0
        else:
            if await storage.remove_override(args.id):
                print(f"override {args.id} removed", file=out)
                return 0
            print(f"no override {args.id}", file=err)
            return 1
    for override in made:
        print(f"added {_line(oncall, override)}", file=out)
    return 0


def _line(oncall: OncallConfig | None, o: Override) -> str:
    schedule = oncall.schedules.get(o.schedule_id) if oncall else None
    zone = schedule.time_zone if schedule else UTC
    what = f"{o.person_id} covers {o.replaces}" if o.replaces else f"{o.person_id} in addition"
    by = f" by {o.created_by}" if o.created_by else ""
    reason = f": {o.reason}" if o.reason else ""
    span = f"{when(o.start, zone)} -> {when(o.end, zone)}"
    return f"override {o.id} on {o.schedule_id}: {what}, {span}{by}{reason}"
