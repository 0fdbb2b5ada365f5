"""``load_oncall``: the example loads into the documented shapes; every kind of error is
reported with its FILE:LINE:COL and what is wrong, all of them at once."""

from __future__ import annotations

from datetime import time, timedelta
from pathlib import Path

import pytest

from bridge.oncall.config import (
    VIAS,
    Contacts,
    OncallConfigError,
    load_oncall,
)
from tests.oncall.support import EXAMPLE, PEOPLE, write

SCHEDULE = """\
schedules:
  - id: primary
    time_zone: Europe/Berlin
    rotation: {type: weekly, handoff: "monday 09:00", start: "2026-11-30", people: [alice, bob]}
"""
POLICY = """\
escalation_policies:
  - id: default
    steps:
      - {notify: ["schedule:primary"], via: [sms]}
"""


def test_the_example_loads_into_the_documented_shapes() -> None:
    config = load_oncall(EXAMPLE)
    alice = config.people["alice"]
    assert alice.name == "Alice Example"
    assert alice.time_zone.key == "Europe/Berlin"
    assert alice.contacts.for_via("sms") == ("+15005550011",)
    assert alice.contacts.for_via("apprise") == ("ntfys://ntfy.example.org/alice",)
    assert config.people["carol"].contacts.for_via("voice") == ()
    primary = config.schedules["primary"]
    assert primary.rotation.type == "weekly"
    assert (primary.rotation.handoff_weekday, primary.rotation.handoff) == (0, time(9, 0))
    assert primary.rotation.people == ("alice", "bob")
    sun = config.schedules["follow-the-sun"].rotation
    assert (sun.type, sun.shift_hours, sun.handoff) == ("hours", 12, time(8, 0))
    policy = config.policies["default"]
    assert (policy.repeat, policy.ack_timeout) == (1, timedelta(minutes=30))
    assert policy.steps[0].after == timedelta(0)
    assert policy.steps[0].via == ("sms", "slack", "voice")
    assert policy.steps[1].after == timedelta(minutes=5)
    assert policy.steps[2].notify == ("person:bob",)
    assert config.policies["business-hours"].ack_timeout is None


def test_routes_first_match_wins_and_people_are_found_by_phone_and_slack() -> None:
    config = load_oncall(EXAMPLE)
    assert config.policy_for({"severity": "critical"}).id == "default"  # type: ignore[union-attr]
    assert config.policy_for({"severity": "high", "category": "payment"}).id == "default"  # type: ignore[union-attr]
    assert config.policy_for({"severity": "high", "category": "system"}).id == "business-hours"  # type: ignore[union-attr]
    assert config.policy_for({"severity": "low"}) is None
    assert config.policy_for({}) is None
    assert config.person_by_phone("+15005550012").id == "bob"  # type: ignore[union-attr]
    assert config.person_by_phone("+1 (500) 555-0012").id == "bob"  # type: ignore[union-attr]
    assert config.person_by_phone("0015005550013").id == "carol"  # type: ignore[union-attr]
    assert config.person_by_phone("+15005550099") is None
    assert config.person_by_slack("U0ALICE").id == "alice"  # type: ignore[union-attr]
    assert config.person_by_slack("U0NOBODY") is None


def test_contacts_for_via() -> None:
    contacts = Contacts(sms="+1500", email="a@b", apprise=("json://x", "ntfy://y"), push="alice")
    assert [contacts.for_via(v) for v in VIAS] == [
        ("+1500",),
        (),
        ("a@b",),
        (),
        ("json://x", "ntfy://y"),
        ("alice",),
    ]
    with pytest.raises(ValueError, match="unknown via 'fax'"):
        contacts.for_via("fax")


def test_yaml_niceties_unquoted_times_anchors_and_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        people:
          - id: alice
            contacts: &c {email: alice@example.org}
          - id: bob
            contacts: {<<: *c, sms: "+15005550012"}
        schedules:
          - id: day
            time_zone: UTC
            rotation: {type: daily, handoff: 09:00, start: 2026-11-30, people: [alice, bob]}
        """,
    )
    config = load_oncall(path)
    assert config.schedules["day"].rotation.handoff == time(9, 0)  # not YAML 1.1's 540
    assert config.people["bob"].contacts == Contacts(sms="+15005550012", email="alice@example.org")
    assert config.people["alice"].time_zone.key == "UTC"  # a person's zone defaults to UTC


# (file text with one line marked "# <-", the text on that line the error points at, message)
CASES = {
    "unknown person in a rotation": (
        PEOPLE
        + """\
schedules:
  - id: primary
    time_zone: Europe/Berlin
    rotation: {type: daily, handoff: "09:00", start: "2026-11-30", people: [alice, zed]}  # <-
""",
        "zed",
        "schedule primary.rotation.people: unknown person 'zed' (known: alice, bob, carol)",
    ),
    "unknown person in a step": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    steps:
      - {notify: ["person:zed"], via: [sms]}  # <-
""",
        '"person:zed"',
        "policy default.steps[0].notify: unknown person 'zed' (known: alice, bob, carol)",
    ),
    "unknown schedule": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    steps:
      - {notify: ["schedule:secondary"], via: [sms]}  # <-
""",
        '"schedule:secondary"',
        "policy default.steps[0].notify: unknown schedule 'secondary' (known: primary)",
    ),
    "unknown policy in a route": (
        PEOPLE
        + SCHEDULE
        + POLICY
        + """\
routes:
  - {matchers: ['severity="critical"'], policy: paging}  # <-
""",
        "paging",
        "routes[0].policy: unknown policy 'paging' (known: default)",
    ),
    "bad time zone of a schedule": (
        PEOPLE
        + """\
schedules:
  - id: primary
    time_zone: Europe/Berln  # <-
    rotation: {type: daily, handoff: "09:00", start: "2026-11-30", people: [alice]}
""",
        "Europe/Berln",
        "schedule primary.time_zone: unknown time zone 'Europe/Berln' (an IANA name such as"
        " Europe/Berlin)",
    ),
    "bad time zone of a person": (
        """\
people:
  - id: alice
    time_zone: CEST  # <-
    contacts: {email: a@example.org}
""",
        "CEST",
        "person alice.time_zone: unknown time zone 'CEST' (an IANA name such as Europe/Berlin)",
    ),
    "weekly hand-off without a weekday": (
        PEOPLE
        + """\
schedules:
  - id: primary
    time_zone: UTC
    rotation: {type: weekly, handoff: "09:00", start: "2026-11-30", people: [alice]}  # <-
""",
        '"09:00"',
        'schedule primary.rotation.handoff (weekly): expected "WEEKDAY HH:MM" such as'
        " \"monday 09:00\", got '09:00'",
    ),
    "daily hand-off with a weekday": (
        PEOPLE
        + """\
schedules:
  - id: primary
    time_zone: UTC
    rotation: {type: daily, handoff: "monday 09:00", start: "2026-11-30", people: [alice]}  # <-
""",
        '"monday 09:00"',
        'schedule primary.rotation.handoff (daily): expected a time of day "HH:MM" (24-hour),'
        " got 'monday 09:00'",
    ),
    "hand-off at 24:00": (
        PEOPLE
        + """\
schedules:
  - id: primary
    time_zone: UTC
    rotation: {type: weekly, handoff: "funday 24:00", start: "2026-11-30", people: [alice]}  # <-
""",
        '"funday 24:00"',
        "schedule primary.rotation.handoff (weekly): unknown weekday 'funday' (monday ... sunday)",
    ),
    "hours without shift_hours": (
        PEOPLE
        + """\
schedules:
  - id: primary
    time_zone: UTC
    rotation: {type: hours, handoff: "08:00", start: "2026-11-30", people: [alice]}  # <-
""",
        "{type",
        "schedule primary.rotation: type hours needs shift_hours (e.g. shift_hours: 12)",
    ),
    "bad duration": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    ack_timeout: 30 minutes  # <-
    steps:
      - {notify: ["schedule:primary"], via: [sms]}
""",
        "30 minutes",
        "policy default.ack_timeout: expected a duration like 90s, 5m, 1h or 1h30m,"
        " got '30 minutes'",
    ),
    "negative after": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    steps:
      - {after: -5m, notify: ["schedule:primary"], via: [sms]}  # <-
""",
        "-5m",
        "policy default.steps[0].after: a duration cannot be negative, got '-5m'",
    ),
    "unknown via": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    steps:
      - {notify: ["schedule:primary"], via: [sms, pager]}  # <-
""",
        "pager",
        "policy default.steps[0].via: unknown via 'pager' (one of sms, voice, email, slack,"
        " apprise, push)",
    ),
    "duplicate id": (
        PEOPLE
        + """\
  - id: alice  # <-
    contacts: {email: alice2@example.org}
""",
        "id: alice",
        "people[3]: duplicate id 'alice'",
    ),
    "unknown key with a suggestion": (
        PEOPLE
        + """\
schedules:
  - id: primary
    timezone: UTC  # <-
    rotation: {type: daily, handoff: "09:00", start: "2026-11-30", people: [alice]}
""",
        "timezone",
        "schedule primary: unknown key 'timezone'; did you mean 'time_zone'? (known: id,"
        " rotation, time_zone)",
    ),
    "empty steps": (
        PEOPLE
        + """\
escalation_policies:
  - id: default
    steps: []  # <-
""",
        "[]",
        "policy default.steps: no steps (a policy needs at least one)",
    ),
    "negative repeat": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    repeat: -1  # <-
    steps:
      - {notify: ["schedule:primary"], via: [sms]}
""",
        "-1",
        "policy default.repeat: must not be negative",
    ),
    "bad matcher": (
        PEOPLE
        + SCHEDULE
        + POLICY
        + """\
routes:
  - {matchers: ['severity=="critical"'], policy: default}  # <-
""",
        "'severity",
        "routes[0].matchers: unexpected '\"' after the value at position 11 in"
        " 'severity==\"critical\"'",
    ),
    "phone number not E.164": (
        """\
people:
  - id: alice
    contacts: {sms: "0151 1234567"}  # <-
""",
        '"0151',
        "person alice.contacts.sms: '0151 1234567' is not an E.164 phone number (like"
        " +4915112345678)",
    ),
    "nobody reachable by the step's via": (
        PEOPLE
        + SCHEDULE
        + """\
escalation_policies:
  - id: default
    steps:
      - {notify: ["schedule:primary"], via: [voice]}  # <-
""",
        '"schedule:primary"',
        "schedule:primary: bob (in schedule primary) has no contact for any of via [voice]",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_each_error_names_its_place_and_what_is_wrong(tmp_path: Path, case: str) -> None:
    text, token, message = CASES[case]
    path = write(tmp_path, text)
    lines = text.splitlines()
    line = next(i for i, t in enumerate(lines, 1) if t.endswith("# <-"))
    col = lines[line - 1].index(token) + 1
    with pytest.raises(OncallConfigError) as info:
        load_oncall(path)
    assert info.value.errors == [f"{path}:{line}:{col}: {message}"]


def test_a_first_step_may_wait(tmp_path: Path) -> None:
    text = PEOPLE + SCHEDULE + POLICY.replace("{notify", "{after: 2m, notify")
    assert load_oncall(write(tmp_path, text)).policies["default"].steps[0].after == timedelta(
        minutes=2
    )


def test_all_errors_at_once_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        people:
          - id: alice
            time_zone: Mars/Olympus
            contacts: {sms: "12345", slak: U0A}
        schedules:
          - id: primary
            time_zone: UTC
            rotation: {type: fortnightly, handoff: "09:00", start: "2026-02-30", people: [zed]}
        escalation_policies:
          - id: default
            repeat: -2
            steps:
              - {after: soon, notify: ["team:ops"], via: [pigeon]}
        routes:
          - {matchers: ['severity=~"(critical"'], policy: nope}
        """,
    )
    with pytest.raises(OncallConfigError) as info:
        load_oncall(path)
    places = [e.split(": ", 1)[0].removeprefix(f"{path}:") for e in info.value.errors]
    assert places == [
        "3:16",  # time zone
        "4:21",  # sms not E.164
        "4:30",  # slak
        "8:22",  # fortnightly
        "8:60",  # 2026-02-30
        "8:83",  # zed
        "11:13",  # repeat
        "13:17",  # after
        "13:32",  # team:ops
        "13:51",  # pigeon
        "15:17",  # the regex
        "15:51",  # nope
    ]
    assert "invalid regular expression '(critical'" in info.value.errors[10]
    assert str(info.value) == "\n".join(info.value.errors)


def test_files_that_do_not_parse(tmp_path: Path) -> None:
    with pytest.raises(OncallConfigError) as info:
        load_oncall(tmp_path / "missing.yml")
    assert info.value.errors[0].startswith(f"{tmp_path / 'missing.yml'}:1:1: cannot read")
    empty = write(tmp_path, "# nothing\n")
    with pytest.raises(OncallConfigError) as info:
        load_oncall(empty)
    assert info.value.errors == [f"{empty}:1:1: the file is empty"]
    broken = write(tmp_path, "people:\n  - id: alice\n   contacts: {]\n")
    with pytest.raises(OncallConfigError) as info:
        load_oncall(broken)
    assert info.value.errors[0].startswith(f"{broken}:3:")
    assert "not valid YAML" in info.value.errors[0]
    listing = write(tmp_path, "- people\n")
    with pytest.raises(OncallConfigError) as info:
        load_oncall(listing)
    assert info.value.errors == [f"{listing}:1:1: the on-call file must be a mapping (key: value)"]


def test_a_bad_merge_key_is_an_error_with_its_place(tmp_path: Path) -> None:
    path = write(tmp_path, "people:\n  - id: alice\n    <<: [1, 2]\n    contacts: {email: a@b.c}\n")
    with pytest.raises(OncallConfigError) as info:
        load_oncall(path)
    (error,) = info.value.errors
    assert (
        error == f"{path}:3:10: person alice: expected a mapping for merging, but found scalar (<<)"
    )
