"""A batch of events grouped by label set, for the recorder: the fields of each event type that
decide its label values (``LABEL_FIELDS``; timestamps, durations, amounts and addresses do not),
the grouping, the durations of a group, and what a batch settles once all its label sets are
recorded (``Batch``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from itertools import repeat
from operator import attrgetter, truediv
from typing import Any

from exporter.events import (
    AuthFailed,
    DatabaseError,
    EndpointRequest,
    PaymentFailed,
    PaymentSucceeded,
    PaymentTimeout,
    StripeWebhookFailed,
    TrafficRequest,
    WidgetLoaded,
    WidgetLoadError,
    WidgetRenderError,
    WidgetScriptError,
)
from exporter.series import Children

# the fields of each event type that decide its label values
LABEL_FIELDS: dict[type, tuple[str, ...]] = {
    PaymentSucceeded: ("organization_id",),
    PaymentFailed: ("organization_id", "decline_code", "failure_code", "error", "currency"),
    PaymentTimeout: ("organization_id", "provider"),
    StripeWebhookFailed: ("event_type", "error"),
    WidgetLoaded: ("organization_id", "widget_id"),
    WidgetLoadError: ("organization_id", "widget_id"),
    WidgetRenderError: ("organization_id", "widget_id"),
    WidgetScriptError: ("organization_id", "widget_id"),
    TrafficRequest: ("organization_id", "country", "user_agent"),
    EndpointRequest: ("route", "method", "status"),
    AuthFailed: ("reason",),
    DatabaseError: ("operation",),
}
# an event's key: its class and those fields (attrgetter: one C call per event)
LABEL_KEYS = {cls: attrgetter("__class__", *fields) for cls, fields in LABEL_FIELDS.items()}
_DURATION = attrgetter("duration_ms")


def group_by_labels(events: Iterable[Any]) -> dict[tuple[Any, ...], list[Any]]:
    """The events by key (class and label fields), in the order each key first appears."""
    keys = LABEL_KEYS
    groups: defaultdict[tuple[Any, ...], list[Any]] = defaultdict(list)
    for event in events:
        groups[keys[type(event)](event)].append(event)
    return groups


def seconds(group: list[Any]) -> list[float]:
    """The durations of a group's events in seconds (every event of its type has one)."""
    return list(map(truediv, map(_DURATION, group), repeat(1000.0)))


def some_seconds(group: list[Any]) -> list[float]:
    """The durations in seconds of the events of the group that have one."""
    return [e.duration_ms / 1000.0 for e in group if e.duration_ms is not None]


class Batch:
    """What a batch settles once all its label sets are recorded: the failure streaks (a success
    resets its organization's streak, a failure that is not the card's extends it; an
    organization with both in one batch is replayed in the batch's order), and the addresses of
    its traffic (counted in the source window at once)."""

    __slots__ = ("extends", "keys", "resets", "touches", "traffic")

    def __init__(self) -> None:
        self.traffic: list[list[TrafficRequest]] = []
        self.resets: set[str] = set()
        self.extends: dict[str, int] = {}
        self.touches: dict[str, int] = {}  # events per organization (overflows count per event)
        self.keys: dict[tuple[Any, ...], tuple[str, bool]] = {}  # group key -> (org, extends)

    def add_streak(self, key: tuple[Any, ...], org: str, extends: bool, events: int) -> None:
        self.keys[key] = (org, extends)
        self.touches[org] = self.touches.get(org, 0) + events
        if extends:
            self.extends[org] = self.extends.get(org, 0) + events
        else:
            self.resets.add(org)

    def settle_streaks(self, streak: Children, events: Iterable[Any]) -> None:
        both = self.resets.intersection(self.extends)
        runs: dict[str, int] = {}
        if both:  # the run of extensions after each one's last reset, in the batch's order
            keys, runs = self.keys, dict.fromkeys(both, 0)
            for event in events:
                found = keys.get(LABEL_KEYS[event.__class__](event))
                if found is not None and found[0] in runs:
                    runs[found[0]] = runs[found[0]] + 1 if found[1] else 0
        for org, touched in self.touches.items():
            child = streak.weighted((org,), touched)
            if org in both:
                child.set(runs[org])
            elif org in self.resets:
                child.set(0)
            else:
                child.inc(self.extends[org])
