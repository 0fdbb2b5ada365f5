"""Validation of the console's settings forms: every problem named, nothing half-saved."""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from datetime import time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from bridge.channels.registry import CHANNELS
from bridge.model import SEVERITIES
from bridge.storage import ConfigurationRow, PreferenceRow

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
# A deliberately simple, linear pattern: one @, no spaces, a dot in the domain.
EMAIL = re.compile(r"^[^@\s]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$")
ORGANIZATION = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

# The alerts whose threshold an organization can override (prometheus/rules/*.yml reads them
# as passiton_alert_threshold{alertname=...}): (lowest, highest, unit, default).
TUNABLE: dict[str, tuple[float, float, str, float]] = {
    "PaymentFailureRatioHigh": (0.01, 1.0, "ratio of payments failing (5m)", 0.2),
    "PaymentTimeoutsHigh": (0.005, 1.0, "ratio of payments timing out (5m)", 0.05),
    "WidgetLoadErrorRatioHigh": (0.01, 1.0, "ratio of widget loads failing", 0.1),
    "WidgetSlowLoads": (0.01, 1.0, "ratio of slow widget loads (10m)", 0.2),
    "TrafficBotShareHigh": (0.05, 1.0, "share of bot requests (30m)", 0.5),
}


class FormError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _time(value: str, field: str, problems: list[str]) -> time | None:
    value = value.strip()
    if not value:
        return None
    try:
        return time.fromisoformat(value)
    except ValueError:
        problems.append(f"{field}: expected HH:MM, got {value[:20]!r}")
        return None


def _list(value: str) -> list[str]:
    return [item.strip() for item in re.split(r"[,\s]+", value) if item.strip()]


def valid_organization(value: str) -> str:
    value = value.strip()
    if not ORGANIZATION.match(value):
        raise FormError(["organization: 1-128 letters, digits, '_', '.', ':' or '-'"])
    return value


def parse_organizations(text: str) -> tuple[str, ...] | None:
    """A user's organizations from "a,b" (empty: every organization). An admin limited to
    some is an organization admin: their settings, not the console's users."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        return None
    return tuple(dict.fromkeys(valid_organization(n) for n in names))


def parse_preference(organization_id: str, form: Mapping[str, str]) -> PreferenceRow:
    problems: list[str] = []
    channels_by_severity: dict[str, list[str]] = {}
    for severity in SEVERITIES:
        chosen = _list(form.get(f"channels_{severity}", ""))
        unknown = [c for c in chosen if c not in CHANNELS]
        if unknown:
            problems.append(
                f"channels for {severity}: unknown {', '.join(unknown)}"
                f" (known: {', '.join(CHANNELS)})"
            )
        if chosen:
            channels_by_severity[severity] = chosen
    channels = channels_by_severity or None
    emails = _list(form.get("email", ""))
    phones = _list(form.get("sms", ""))
    problems += [f"e-mail address not valid: {e[:80]!r}" for e in emails if not EMAIL.match(e)]
    problems += [
        f"phone number not in E.164 form (+14155550100): {p[:40]!r}"
        for p in phones
        if not E164.match(p)
    ]
    min_severity = form.get("min_severity", "low")
    if min_severity not in SEVERITIES:
        problems.append(f"minimum severity must be one of {', '.join(SEVERITIES)}")
    zone = form.get("timezone", "UTC").strip() or "UTC"
    try:
        if zone not in _zones():
            raise ZoneInfoNotFoundError(zone)
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"unknown time zone {zone[:60]!r} (e.g. Europe/Berlin)")
    start = _time(form.get("quiet_hours_start", ""), "quiet hours start", problems)
    end = _time(form.get("quiet_hours_end", ""), "quiet hours end", problems)
    if (start is None) != (end is None) and not problems:
        problems.append("quiet hours need both a start and an end (or neither)")
    if problems:
        raise FormError(problems)
    recipients = {k: v for k, v in (("email", emails), ("sms", phones)) if v}
    return PreferenceRow(organization_id, channels, recipients, min_severity, start, end, zone)


def parse_configuration(organization_id: str, form: Mapping[str, str]) -> ConfigurationRow:
    problems: list[str] = []
    alertname = form.get("alertname", "")
    if alertname not in TUNABLE:
        raise FormError([f"alert name must be one of {', '.join(TUNABLE)}"])
    low, high, unit, _ = TUNABLE[alertname]
    raw = form.get("threshold", "").strip()
    threshold: float | None = None
    if raw:
        try:
            threshold = float(raw)
        except ValueError:
            problems.append(f"threshold: not a number: {raw[:20]!r}")
        else:
            if not math.isfinite(threshold) or not low <= threshold <= high:
                problems.append(f"threshold for {alertname} must be within {low}..{high} ({unit})")
    if problems:
        raise FormError(problems)
    enabled = form.get("enabled", "") in ("on", "true", "1")
    return ConfigurationRow(organization_id, alertname, threshold, enabled)
