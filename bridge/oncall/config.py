"""The on-call file (``ONCALL_CONFIG``): people, schedules, escalation policies and routes.

``load_oncall(path)`` reads it into an ``OncallConfig`` or raises ``OncallConfigError`` with
every error found, each ``FILE:LINE:COL: message``. The schema is ../shared/DESIGN.md's
"On-call" section; what a rotation means in time is ``bridge/oncall/schedule.py``.

Checked: unknown keys (typos, with a suggestion), missing and duplicate ids, unknown people,
schedules and policies referenced, time zones (IANA names), hand-offs (``09:00``,
``monday 09:00``), durations (``90s``, ``5m``, ``1h``), ``via`` names, E.164 phone numbers,
empty steps, negative ``repeat``, matcher syntax, and that every person a step notifies can be
reached by one of its ``via``s.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import date, time, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from yaml.nodes import MappingNode, Node, ScalarNode

from bridge.matchers import Matcher, MatcherError, parse_matchers
from bridge.oncall import values
from bridge.oncall.model import (
    ROTATION_TYPES,
    VIAS,
    Contacts,
    OncallConfig,
    Person,
    Policy,
    Rotation,
    RotationType,
    Route,
    Schedule,
    Step,
)
from bridge.oncall.yaml_nodes import NodeReader

__all__ = [
    "VIAS",
    "Contacts",
    "OncallConfig",
    "OncallConfigError",
    "Person",
    "Policy",
    "Rotation",
    "RotationType",
    "Route",
    "Schedule",
    "Step",
    "load_oncall",
]
_T = TypeVar("_T")


class OncallConfigError(ValueError):
    """The on-call file is invalid; ``errors`` holds every problem, ``FILE:LINE:COL: message``."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors


def load_oncall(path: Path) -> OncallConfig:
    """Read and check the on-call file; raises OncallConfigError with ALL errors found."""
    reader = NodeReader(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise OncallConfigError([f"{path}:1:1: cannot read the on-call file: {exc}"]) from None
    root = reader.compose(text)
    config = _Parser(reader).parse(root) if root is not None else None
    if reader.errors or config is None:
        raise OncallConfigError(reader.errors)
    return config


_TOP = ("people", "schedules", "escalation_policies", "routes")
_PERSON = ("id", "name", "time_zone", "contacts")
_CONTACTS = (*VIAS, "pagerduty")
_SCHEDULE = ("id", "time_zone", "rotation")
_ROTATION = ("type", "handoff", "start", "people", "shift_hours")
_POLICY = ("id", "repeat", "ack_timeout", "steps")
_STEP = ("after", "notify", "via")
_ROUTE = ("matchers", "policy")


class _Parser:
    def __init__(self, reader: NodeReader) -> None:
        self.r = reader
        # references checked once every id is known: (node, kind, id, where)
        self.refs: list[tuple[Node, str, str, str]] = []
        self.reach: list[tuple[Node, str, Step]] = []  # (node, target, step)
        self.declared: dict[str, set[str]] = {
            "people": set(),
            "schedules": set(),
            "escalation_policies": set(),
        }

    def parse(self, root: Node) -> OncallConfig | None:
        top = self.r.mapping(root, "the on-call file", _TOP)
        if top is None:
            return None
        people = self._many(top.get("people"), "people", self._person)
        schedules = self._many(top.get("schedules"), "schedules", self._schedule)
        policies = self._many(top.get("escalation_policies"), "escalation_policies", self._policy)
        routes = []
        for i, node in enumerate(self._items(top.get("routes"), "routes")):
            route = self._route(node, f"routes[{i}]")
            if route is not None:
                routes.append(route)
        # declared (even if invalid): an invalid person is one error, not one per reference
        known = {
            "person": self.declared["people"],
            "schedule": self.declared["schedules"],
            "policy": self.declared["escalation_policies"],
        }
        for node, kind, ident, where in self.refs:
            if ident not in known[kind]:
                self.r.error(node, f"{where}: unknown {kind} {ident!r}{_known(known[kind])}")
        for node, target, step in self.reach:
            self._check_reach(node, target, step, people, schedules)
        return OncallConfig(people, schedules, policies, tuple(routes))

    # -- sections ---------------------------------------------------------------------------

    def _items(self, node: Node | None, what: str) -> list[Node]:
        return [] if node is None else self.r.sequence(node, what) or []

    def _many(
        self, node: Node | None, what: str, parse: Callable[[Node, str], _T | None]
    ) -> dict[str, _T]:
        """Each item parsed; ids declared twice are errors (even when an item is invalid)."""
        found: dict[str, _T] = {}
        for i, item in enumerate(self._items(node, what)):
            ident = _declared_id(item)
            if ident is not None:
                if ident in self.declared[what]:
                    self.r.error(item, f"{what}[{i}]: duplicate id {ident!r}")
                    continue
                self.declared[what].add(ident)
            parsed = parse(item, f"{what}[{i}]")
            if parsed is not None:
                found[parsed.id] = parsed  # type: ignore[attr-defined]
        return found

    def _id(self, fields: dict[str, Node], where: str) -> str | None:
        node = fields.get("id")
        text = self.r.text(node, f"{where}.id") if node is not None else None
        if text is None:
            return None
        try:
            return values.check_id(text)
        except ValueError as exc:
            self.r.error(node, f"{where}.id: {exc}")
            return None

    def _zone(self, node: Node | None, where: str) -> ZoneInfo | None:
        if node is None:
            return ZoneInfo("UTC")
        text = self.r.text(node, where)
        if text is None:
            return None
        try:
            return values.parse_zone(text)
        except ValueError as exc:
            self.r.error(node, f"{where}: {exc}")
            return None

    def _person(self, node: Node, where: str) -> Person | None:
        where = _named("person", node, where)
        fields = self.r.mapping(node, where, _PERSON, required=("id", "contacts"))
        if fields is None:
            return None
        ident = self._id(fields, where)
        name = self.r.text(fields["name"], f"{where}.name") if "name" in fields else ident
        zone = self._zone(fields.get("time_zone"), f"{where}.time_zone")
        contacts = self._contacts(fields.get("contacts"), f"{where}.contacts")
        if ident is None or name is None or zone is None or contacts is None:
            return None
        return Person(ident, name, zone, contacts)

    def _contacts(self, node: Node | None, where: str) -> Contacts | None:
        if node is None:
            return None
        fields = self.r.mapping(node, where, _CONTACTS)
        if fields is None:
            return None
        found: dict[str, str] = {}
        ok = True
        for via in ("sms", "voice", "email", "slack", "push", "pagerduty"):
            if via not in fields:
                continue
            text = self.r.text(fields[via], f"{where}.{via}")
            problem = _contact_problem(via, text) if text is not None else "missing"
            if problem:
                ok = False
                if text is not None:
                    self.r.error(fields[via], f"{where}.{via}: {problem}")
            else:
                found[via] = text  # type: ignore[assignment]
        apprise = []
        for item, url in (
            self.r.texts(fields["apprise"], f"{where}.apprise") if ("apprise" in fields) else []
        ):
            if "://" not in url:
                self.r.error(item, f"{where}.apprise: {url!r} is not an Apprise URL (scheme://…)")
                ok = False
            apprise.append(url)
        if not found and not apprise and ok:
            self.r.error(
                node,
                f"{where}: no contact at all"
                " (sms, voice, email, slack, apprise, push or pagerduty)",
            )
        return Contacts(**found, apprise=tuple(apprise)) if ok else None

    def _schedule(self, node: Node, where: str) -> Schedule | None:
        where = _named("schedule", node, where)
        fields = self.r.mapping(node, where, _SCHEDULE, required=("id", "time_zone", "rotation"))
        if fields is None:
            return None
        ident = self._id(fields, where)
        zone = (
            self._zone(fields["time_zone"], f"{where}.time_zone")
            if ("time_zone" in fields)
            else None
        )
        rotation = (
            self._rotation(fields["rotation"], f"{where}.rotation")
            if ("rotation" in fields)
            else None
        )
        if ident is None or zone is None or rotation is None:
            return None
        return Schedule(ident, zone, rotation)

    def _rotation(self, node: Node, where: str) -> Rotation | None:
        fields = self.r.mapping(
            node, where, _ROTATION, required=("type", "handoff", "start", "people")
        )
        if fields is None:
            return None
        ok = True
        kind = self.r.text(fields["type"], f"{where}.type") if "type" in fields else None
        if kind is not None and kind not in ROTATION_TYPES:
            self.r.error(fields["type"], f"{where}.type: {kind!r} is not daily, weekly or hours")
            kind = None
        handoff: time | None = None
        weekday: int | None = None
        handoff_text = (
            self.r.text(fields["handoff"], f"{where}.handoff") if ("handoff" in fields) else None
        )
        if kind is not None and handoff_text is not None:
            try:
                if kind == "weekly":
                    weekday, handoff = values.parse_weekly(handoff_text)
                else:
                    handoff = values.parse_clock(handoff_text)
            except ValueError as exc:
                self.r.error(fields["handoff"], f"{where}.handoff ({kind}): {exc}")
        shift_hours: int | None = None
        if "shift_hours" in fields:
            shift_hours = self.r.integer(fields["shift_hours"], f"{where}.shift_hours")
            if kind != "hours":
                self.r.error(fields["shift_hours"], f"{where}.shift_hours: only for type: hours")
                ok = False
            elif shift_hours is not None and shift_hours < 1:
                self.r.error(fields["shift_hours"], f"{where}.shift_hours: must be at least 1")
                ok = False
        elif kind == "hours":
            self.r.error(node, f"{where}: type hours needs shift_hours (e.g. shift_hours: 12)")
            ok = False
        start: date | None = None
        start_text = self.r.text(fields["start"], f"{where}.start") if "start" in fields else None
        if start_text is not None:
            try:
                start = values.parse_date(start_text)
            except ValueError as exc:
                self.r.error(fields["start"], f"{where}.start: {exc}")
        people = []
        if "people" in fields:
            for item, ident in self.r.texts(fields["people"], f"{where}.people"):
                self.refs.append((item, "person", ident, f"{where}.people"))
                people.append(ident)
            if not people:
                self.r.error(fields["people"], f"{where}.people: nobody in the rotation")
        if not ok or kind is None or handoff is None or start is None or not people:
            return None
        if kind == "hours" and shift_hours is None:
            return None
        return Rotation(kind, handoff, weekday, shift_hours, start, tuple(people))  # type: ignore[arg-type]

    def _policy(self, node: Node, where: str) -> Policy | None:
        where = _named("policy", node, where)
        fields = self.r.mapping(node, where, _POLICY, required=("id", "steps"))
        if fields is None:
            return None
        ident = self._id(fields, where)
        repeat: int | None = 0
        if "repeat" in fields:
            repeat = self.r.integer(fields["repeat"], f"{where}.repeat")
            if repeat is not None and repeat < 0:
                self.r.error(fields["repeat"], f"{where}.repeat: must not be negative")
                repeat = None
        ack_timeout = None
        if "ack_timeout" in fields:
            ack_timeout = self._duration(fields["ack_timeout"], f"{where}.ack_timeout")
            if ack_timeout is not None and ack_timeout <= timedelta(0):
                self.r.error(fields["ack_timeout"], f"{where}.ack_timeout: must be positive")
        steps = []
        step_nodes = self._items(fields.get("steps"), f"{where}.steps")
        if "steps" in fields and not step_nodes:
            self.r.error(fields["steps"], f"{where}.steps: no steps (a policy needs at least one)")
        ok = True
        for i, step_node in enumerate(step_nodes):
            step = self._step(step_node, f"{where}.steps[{i}]")
            ok = ok and step is not None
            if step is not None:
                steps.append(step)
        if ident is None or repeat is None or not ok or not steps:
            return None
        return Policy(ident, repeat, ack_timeout, tuple(steps))

    def _duration(self, node: Node, where: str) -> timedelta | None:
        text = self.r.text(node, where)
        if text is None:
            return None
        try:
            return values.parse_duration(text)
        except ValueError as exc:
            self.r.error(node, f"{where}: {exc}")
            return None

    def _step(self, node: Node, where: str) -> Step | None:
        fields = self.r.mapping(node, where, _STEP, required=("notify", "via"))
        if fields is None:
            return None
        after = (
            self._duration(fields["after"], f"{where}.after")
            if "after" in fields
            else (timedelta(0))
        )
        targets = []
        target_nodes = []
        if "notify" in fields:
            given = self.r.texts(fields["notify"], f"{where}.notify")
            for item, target in given:
                kind, sep, ident = target.partition(":")
                if not sep or kind not in ("schedule", "person") or not ident:
                    self.r.error(
                        item, f'{where}.notify: {target!r} is not "schedule:ID" or "person:ID"'
                    )
                    continue
                self.refs.append((item, kind, ident, f"{where}.notify"))
                targets.append(target)
                target_nodes.append(item)
            if not given:
                self.r.error(fields["notify"], f"{where}.notify: nobody to notify")
        vias: list[str] = []
        if "via" in fields:
            given = self.r.texts(fields["via"], f"{where}.via")
            for item, via in given:
                if via not in VIAS:
                    self.r.error(
                        item, f"{where}.via: unknown via {via!r} (one of {', '.join(VIAS)})"
                    )
                elif via not in vias:
                    vias.append(via)
            if not given:
                self.r.error(fields["via"], f"{where}.via: no way to notify")
        if after is None or not targets or not vias:
            return None
        step = Step(after, tuple(targets), tuple(vias))
        self.reach.extend((n, t, step) for n, t in zip(target_nodes, targets, strict=True))
        return step

    def _route(self, node: Node, where: str) -> Route | None:
        fields = self.r.mapping(node, where, _ROUTE, required=("policy",))
        if fields is None:
            return None
        matchers: list[Matcher] = []
        ok = True
        if "matchers" in fields:
            for item, text in self.r.texts(fields["matchers"], f"{where}.matchers"):
                try:
                    matchers.extend(parse_matchers(text))
                except MatcherError as exc:
                    self.r.error(item, f"{where}.matchers: {exc}")
                    ok = False
        policy = self.r.text(fields["policy"], f"{where}.policy") if "policy" in fields else None
        if policy is not None:
            self.refs.append((fields["policy"], "policy", policy, f"{where}.policy"))
        if policy is None or not ok:
            return None
        return Route(tuple(matchers), policy)

    def _check_reach(
        self,
        node: Node,
        target: str,
        step: Step,
        people: Mapping[str, Person],
        schedules: Mapping[str, Schedule],
    ) -> None:
        kind, _, ident = target.partition(":")
        if kind == "person":
            who = [ident]
        else:
            schedule = schedules.get(ident)
            who = list(dict.fromkeys(schedule.rotation.people)) if schedule else []
        for person_id in who:
            person = people.get(person_id)
            if person is None:
                continue
            if not any(person.contacts.for_via(via) for via in step.via):
                through = "" if kind == "person" else f" (in schedule {ident})"
                self.r.error(
                    node,
                    f"{target}: {person_id}{through} has no contact for any of via"
                    f" [{', '.join(step.via)}]",
                )


def _contact_problem(via: str, text: str) -> str:
    if via in ("sms", "voice") and not values.is_e164(text):
        return f"{text!r} is not an E.164 phone number (like +4915112345678)"
    if via == "email" and ("@" not in text or text.startswith("@") or text.endswith("@")):
        return f"{text!r} is not an e-mail address"
    if via == "slack" and not (text[:1] in "UW" and text.isalnum() and text.isupper()):
        return f"{text!r} is not a Slack user id (like U0123ABCD)"
    if via == "push" and not (
        0 < len(text) <= 64 and all(c.isalnum() or c in "._@-" for c in text)
    ):
        return f"{text!r} is not a console user name (the user whose browsers get the pages)"
    if via == "pagerduty" and not (text.isascii() and text.isalnum() and text.isupper()):
        return f"{text!r} is not a PagerDuty user id (like PLH1HKV)"
    return ""


def _named(kind: str, node: Node, where: str) -> str:
    """``schedule primary`` rather than ``schedules[0]`` once the id is written."""
    ident = _declared_id(node)
    return f"{kind} {ident}" if ident else where


def _declared_id(node: Node) -> str | None:
    if isinstance(node, MappingNode):
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value == "id" and isinstance(value, ScalarNode):
                return str(value.value).strip() or None
    return None


def _known(found: Collection[str]) -> str:
    return f" (known: {', '.join(sorted(found))})" if found else " (none defined)"
