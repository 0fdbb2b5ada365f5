"""The on-call types: people and their contacts, schedules and their rotations, escalation
policies and their steps, routes, and ``OncallConfig`` holding them (``bridge/oncall/config.py``
reads them from ``ONCALL_CONFIG`` and re-exports them)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bridge.matchers import Matcher
from bridge.oncall import values

VIAS: tuple[str, ...] = ("sms", "voice", "email", "slack", "apprise", "push")
ROTATION_TYPES = ("daily", "weekly", "hours")
RotationType = Literal["daily", "weekly", "hours"]


@dataclass(frozen=True)
class Contacts:
    sms: str | None = None
    voice: str | None = None
    email: str | None = None
    slack: str | None = None
    apprise: tuple[str, ...] = ()
    # the console user whose phones and browsers get Web Push (their subscriptions)
    push: str | None = None
    # not a way to page: the PagerDuty user whose acknowledgements there are this person's
    pagerduty: str | None = None

    def for_via(self, via: str) -> tuple[str, ...]:
        """The addresses for one ``via`` (``sms``, ``voice``, ...); empty if there are none."""
        if via == "apprise":
            return self.apprise
        if via not in VIAS:
            raise ValueError(f"unknown via {via!r} (one of {', '.join(VIAS)})")
        address = getattr(self, via)
        return (address,) if address else ()


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    time_zone: ZoneInfo
    contacts: Contacts


@dataclass(frozen=True)
class Rotation:
    type: RotationType
    handoff: time  # wall-clock, in the schedule's zone; for "hours" the anchor of the day
    handoff_weekday: int | None  # weekly: 0 = Monday
    shift_hours: int | None  # hours: the length of a shift
    start: date  # in the schedule's zone
    people: tuple[str, ...]


@dataclass(frozen=True)
class Schedule:
    id: str
    time_zone: ZoneInfo
    rotation: Rotation


@dataclass(frozen=True)
class Step:
    after: timedelta
    notify: tuple[str, ...]  # "schedule:ID" | "person:ID"
    via: tuple[str, ...]  # a subset of VIAS


@dataclass(frozen=True)
class Policy:
    id: str
    repeat: int
    ack_timeout: timedelta | None
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Route:
    matchers: tuple[Matcher, ...]  # none: every incident
    policy: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)


@dataclass(frozen=True)
class OncallConfig:
    people: Mapping[str, Person]
    schedules: Mapping[str, Schedule]
    policies: Mapping[str, Policy]
    routes: tuple[Route, ...]

    def policy_for(self, labels: Mapping[str, str]) -> Policy | None:
        """The policy of the first route matching ``labels``; None when none does."""
        for route in self.routes:
            if route.matches(labels):
                return self.policies[route.policy]
        return None

    def person_by_phone(self, number: str) -> Person | None:
        """Whose sms or voice number this is (compared in E.164: ``+49 151 …`` matches)."""
        wanted = values.normalize_phone(number)
        for person in self.people.values():
            if wanted in (person.contacts.sms, person.contacts.voice):
                return person
        return None

    def person_by_slack(self, user_id: str) -> Person | None:
        for person in self.people.values():
            if person.contacts.slack == user_id:
                return person
        return None

    def person_by_pagerduty(self, user_id: str) -> Person | None:
        """Whose PagerDuty user (``contacts.pagerduty``, like ``PLH1HKV``) this is."""
        for person in self.people.values():
            if user_id and person.contacts.pagerduty == user_id:
                return person
        return None
