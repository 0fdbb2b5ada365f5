"""``passiton-monitoring oncall check|who|override`` and the bridge refusing an invalid on-call
file: the commands run in-process through the real parser (stdout and stderr captured), and
twice as real processes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.config import BridgeConfig
from bridge.oncall.cli import cmd_oncall
from passiton_common.settings import ConfigError
from passiton_monitoring.cli import build_parser
from tests.oncall.support import EXAMPLE, REPO, write

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/nothing"


def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    args = build_parser().parse_args(["oncall", *argv])
    out, err = io.StringIO(), io.StringIO()
    code = cmd_oncall(args, env, out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"ONCALL_CONFIG": str(EXAMPLE), "PASSITON_STATE_DIR": str(tmp_path / "state")}


def test_check_the_example_as_a_real_process() -> None:
    environ = {k: v for k, v in os.environ.items() if k != "ONCALL_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "passiton_monitoring", "oncall", "check", str(EXAMPLE)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines() == [
        f"{EXAMPLE}: ok: 3 people, 3 schedules, 2 escalation policies, 3 routes",
        "  primary: weekly (monday 09:00 Europe/Berlin), alice -> bob,"
        " first hand-off Mon 2026-11-30 09:00 CET",
        "  secondary: daily (09:00 Europe/Berlin), carol -> alice -> bob,"
        " first hand-off Mon 2026-11-30 09:00 CET",
        "  follow-the-sun: hours (every 12h from 08:00 America/New_York), bob -> alice,"
        " first hand-off Mon 2026-11-30 08:00 EST",
    ]


def test_check_prints_every_error_and_exits_1(tmp_path: Path, env: dict[str, str]) -> None:
    bad = write(
        tmp_path,
        """\
        people:
          - id: alice
            contacts: {email: alice@example.org}
        schedules:
          - id: primary
            time_zone: Europe/Berln
            rotation: {type: daily, handoff: "09:00", start: "2026-11-30", people: [alice, bob]}
        """,
    )
    code, out, _ = run(["check"], {**env, "ONCALL_CONFIG": str(bad)})
    assert code == 1
    assert out.splitlines() == [
        f"{bad}:6:16: schedule primary.time_zone: unknown time zone 'Europe/Berln' (an IANA name"
        " such as Europe/Berlin)",
        f"{bad}:7:84: schedule primary.rotation.people: unknown person 'bob' (known: alice)",
        f"2 error(s) in {bad}",
    ]
    code, out, _ = run(["check"], {"PASSITON_STATE_DIR": env["PASSITON_STATE_DIR"]})
    assert code == 1
    assert "ONCALL_CONFIG is not set" in out


def test_who_at_a_time_without_overrides(env: dict[str, str]) -> None:
    code, out, err = run(["who", "--at", "2026-12-08T12:00:00Z", "--no-overrides"], env)
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "on call at Tue 2026-12-08 12:00 UTC (rotations only: --no-overrides)",
        "primary (Europe/Berlin, weekly)",
        "  now:  Bob Example (bob) since Mon 2026-12-07 09:00 CET, until Mon 2026-12-14 09:00 CET",
        "  next: Alice Example (alice) from Mon 2026-12-14 09:00 CET",
        "secondary (Europe/Berlin, daily)",
        "  now:  Bob Example (bob) since Tue 2026-12-08 09:00 CET, until Wed 2026-12-09 09:00 CET",
        "  next: Carol Example (carol) from Wed 2026-12-09 09:00 CET",
        "follow-the-sun (America/New_York, hours)",
        "  now:  Alice Example (alice) since Mon 2026-12-07 20:00 EST,"
        " until Tue 2026-12-08 08:00 EST",
        "  next: Bob Example (bob) from Tue 2026-12-08 08:00 EST",
    ]
    code, _, err = run(["who", "--at", "next tuesday", "--no-overrides"], env)
    assert code == 2
    assert "expected an ISO 8601 time" in err


def test_who_without_a_database_shows_the_rotations_and_warns(env: dict[str, str]) -> None:
    code, out, err = run(["who", "--at", "2026-12-08T12:00Z"], {**env, "DATABASE_URL": UNREACHABLE})
    assert code == 0
    assert err.startswith("warning: overrides not read (database unavailable:")
    assert out.splitlines()[0] == (
        "on call at Tue 2026-12-08 12:00 UTC (rotations only: the database could not be read)"
    )
    assert "  now:  Bob Example (bob) since Mon 2026-12-07 09:00 CET" in out


def test_overrides_add_list_who_swap_remove(db_url: str, env: dict[str, str]) -> None:
    env = {**env, "DATABASE_URL": db_url}
    # a time without an offset is the schedule's (Berlin): 09:00 CET
    code, out, err = run(
        [
            "override",
            "add",
            "--schedule",
            "primary",
            "--person",
            "carol",
            "--replaces",
            "bob",
            "--start",
            "2026-12-08T09:00",
            "--end",
            "2026-12-09T09:00",
            "--reason",
            "bob is ill",
            "--by",
            "admin",
        ],
        env,
    )
    assert (code, err) == (0, "")
    assert out == (
        "added override 1 on primary: carol covers bob, Tue 2026-12-08 09:00 CET ->"
        " Wed 2026-12-09 09:00 CET by admin: bob is ill\n"
    )
    code, out, err = run(["who", "--at", "2026-12-08T12:00Z"], env)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "on call at Tue 2026-12-08 12:00 UTC (1 override(s) from the database)"
    assert lines[1:4] == [
        "primary (Europe/Berlin, weekly)",
        "  now:  Carol Example (carol) covering bob (override 1) since Tue 2026-12-08 09:00 CET,"
        " until Wed 2026-12-09 09:00 CET",
        "  next: Bob Example (bob) from Wed 2026-12-09 09:00 CET",
    ]
    code, out, err = run(
        [
            "override",
            "swap",
            "--schedule",
            "primary",
            "--person",
            "alice",
            "--with",
            "bob",
            "--start",
            "2026-12-07T09:00+01:00",
            "--end",
            "2026-12-14T09:00+01:00",
            "--other-start",
            "2026-12-14T08:00Z",
            "--other-end",
            "2026-12-21T08:00Z",
        ],
        env,
    )
    assert (code, err) == (0, "")
    assert [line.split(",")[0] for line in out.splitlines()] == [
        "added override 2 on primary: alice covers bob",
        "added override 3 on primary: bob covers alice",
    ]
    assert "warning" not in err
    code, out, _ = run(["override", "list", "--schedule", "primary", "--all"], env)
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "override 1 on primary",
        "override 2 on primary",
        "override 3 on primary",
    ]
    assert run(["override", "remove", "2"], env)[:2] == (0, "override 2 removed\n")
    assert run(["override", "remove", "2"], env) == (1, "", "no override 2\n")
    code, out, _ = run(["override", "list", "--all"], env)
    assert [line.split(":")[0] for line in out.splitlines()] == [
        "override 1 on primary",
        "override 3 on primary",
    ]


def test_override_add_checks_against_the_file(db_url: str, env: dict[str, str]) -> None:
    env = {**env, "DATABASE_URL": db_url}
    base = ["override", "add", "--start", "2026-12-08T09:00", "--end", "2026-12-09T09:00"]
    code, _, err = run([*base, "--schedule", "tertiary", "--person", "zed"], env)
    assert code == 2
    assert err.splitlines() == [
        "unknown schedule 'tertiary' (known: primary, secondary, follow-the-sun)",
        "unknown person 'zed' (known: alice, bob, carol)",
    ]
    code, _, err = run(
        [*base, "--schedule", "primary", "--person", "bob", "--replaces", "bob"], env
    )
    assert (code, err) == (2, "bob cannot cover their own time\n")
    code, _, err = run(
        [
            "override",
            "add",
            "--schedule",
            "primary",
            "--person",
            "bob",
            "--start",
            "2026-12-09",
            "--end",
            "2026-12-08",
        ],
        env,
    )
    assert (code, err) == (2, "--end must be after --start\n")
    # alice is not on call on primary in bob's week: added, with a warning
    code, out, err = run(
        [*base, "--schedule", "primary", "--person", "carol", "--replaces", "alice"], env
    )
    assert code == 0
    assert out.startswith("added override 1")
    assert err == "warning: alice is not on call on primary in that span (per the rotation)\n"


def test_the_bridge_config_holds_the_file_or_refuses_it(tmp_path: Path) -> None:
    config = BridgeConfig.from_env({"ONCALL_CONFIG": str(EXAMPLE)})
    assert config.oncall_config == EXAMPLE
    assert config.oncall is not None
    assert set(config.oncall.schedules) == {"primary", "secondary", "follow-the-sun"}
    assert BridgeConfig.from_env({}).oncall is None
    bad = write(tmp_path, "people:\n  - id: alice\n    contacts: {sms: '12'}\n")
    with pytest.raises(ConfigError) as info:
        BridgeConfig.from_env({"ONCALL_CONFIG": str(bad)})
    assert str(info.value) == (
        f"ONCALL_CONFIG: 1 error(s) in the on-call file:\n  {bad}:3:21: person alice.contacts.sms:"
        " '12' is not an E.164 phone number (like +4915112345678)"
    )


def test_the_bridge_refuses_to_start_with_an_invalid_oncall_file(tmp_path: Path) -> None:
    bad = write(
        tmp_path,
        "people:\n  - id: alice\n    time_zone: Nowhere/Land\n    contacts: {email: a@b.c}\n",
    )
    environ = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "ONCALL_CONFIG": str(bad),
        "BRIDGE_WEBHOOK_TOKEN": "t" * 32,
        "PASSITON_STATE_DIR": str(tmp_path / "state"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "passiton_monitoring", "bridge", "--listen", "127.0.0.1:1"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert f"{bad}:3:16: person alice.time_zone: unknown time zone 'Nowhere/Land'" in done.stderr
    assert not (tmp_path / "state").exists()  # refused before anything started
