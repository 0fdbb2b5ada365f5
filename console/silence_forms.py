"""The silence form: its matcher rows (prefilled from an alert, an incident or a silence),
reading them back, and the end of the silence.

A row is a checkbox, a label name, an operator and a value; unchecked rows are kept (so a
preview shows the form as it was) but are not part of the silence. Prefilled from an alert
or an incident, ``severity`` and ``widget_id`` start unchecked: a silence for one severity
would let the same problem page again at the next, and one for one widget misses its
siblings."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bridge.storage.console import AlertRow
from console.alertmanagers import AmSilence
from console.silence_matchers import (
    MAX_MATCHERS,
    OPERATORS,
    MatcherProblem,
    SilenceMatcher,
    check,
)

DROPPED_BY_DEFAULT = frozenset({"severity", "widget_id"})
DURATIONS = {"30m": 1800, "1h": 3600, "4h": 14400, "12h": 43200, "1d": 86400, "7d": 604800}
MAX_SILENCE = timedelta(days=7)
MAX_ROWS = MAX_MATCHERS + 8
BLANK_ROWS = 2
MAX_COMMENT = 500
_INDEX = re.compile(r"^name_([0-9]{1,3})$")


@dataclass
class Row:
    name: str
    op: str = "="
    value: str = ""
    use: bool = True


@dataclass
class SilenceForm:
    rows: list[Row]
    duration: str = "1h"
    ends_at: str = ""  # YYYY-MM-DDTHH:MM (UTC), wins over duration when set
    comment: str = ""
    origin: str = ""  # alert:<table>/<id> or incident:<id>: where it was opened from
    problems: list[str] = field(default_factory=list)
    status: int = 400  # of the refusal: 403 when it is outside the user's organizations

    def with_blanks(self) -> list[Row]:
        return self.rows + [Row("", use=True) for _ in range(BLANK_ROWS)]


def rows_from_labels(labels: Mapping[str, str]) -> list[Row]:
    ordered = sorted(labels.items(), key=lambda kv: (kv[0] != "alertname", kv[0]))
    return [Row(k, "=", v, use=k not in DROPPED_BY_DEFAULT) for k, v in ordered]


def rows_from_alert(alert: AlertRow) -> list[Row]:
    return rows_from_labels(alert.labels)


def rows_from_incident(alerts: Sequence[AlertRow]) -> list[Row]:
    """The alert names of the incident's firing alerts (one anchored alternation when there
    are several) and the labels they all share."""
    firing = [a for a in alerts if a.status == "firing"] or list(alerts)
    if not firing:
        return []
    names = sorted({a.alertname for a in firing})
    shared = dict(firing[0].labels)
    for alert in firing[1:]:
        shared = {k: v for k, v in shared.items() if alert.labels.get(k) == v}
    shared.pop("alertname", None)
    rows = [
        Row("alertname", "=~", "|".join(re.escape(n) for n in names))
        if len(names) > 1
        else Row("alertname", "=", names[0])
    ]
    return rows + rows_from_labels(shared)


def rows_from_silence(silence: AmSilence) -> list[Row]:
    return [Row(m.name, m.op, m.value) for m in silence.matchers]


def read_rows(form: Mapping[str, str]) -> list[Row]:
    indexes = sorted(
        {int(m.group(1)) for key in form if (m := _INDEX.match(key))} & set(range(MAX_ROWS))
    )
    rows = []
    for i in indexes:
        name = form.get(f"name_{i}", "").strip()
        value = form.get(f"value_{i}", "")
        if not name and not value:
            continue
        rows.append(Row(name, form.get(f"op_{i}", "="), value, use=bool(form.get(f"use_{i}"))))
    return rows


def read_form(form: Mapping[str, str]) -> SilenceForm:
    return SilenceForm(
        rows=read_rows(form),
        duration=form.get("duration", "1h"),
        ends_at=form.get("ends_at", "").strip(),
        comment=form.get("comment", "").strip()[:MAX_COMMENT],
        origin=form.get("origin", ""),
    )


def matchers_of(form: SilenceForm) -> list[SilenceMatcher]:
    """The checked rows as matchers; every problem goes in ``form.problems``."""
    found = []
    for row in form.rows:
        if not row.use:
            continue
        if row.op not in OPERATORS:
            form.problems.append(f"matcher {row.name}: operator must be one of =, !=, =~, !~")
            continue
        try:
            found.append(SilenceMatcher.of(row.name, row.op, row.value))
        except MatcherProblem as exc:
            form.problems.append(str(exc))
    if not form.problems:
        try:
            check(found)
        except MatcherProblem as exc:
            form.problems.append(str(exc))
    return found


def end_of(form: SilenceForm, now: datetime, start: datetime | None = None) -> datetime | None:
    """When the silence ends: the end time given, else the chosen duration from ``start``
    (or now); None with the problem in ``form.problems``."""
    if form.ends_at:
        try:
            end = datetime.strptime(form.ends_at, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
        except ValueError:
            form.problems.append("ends at: a date and time, YYYY-MM-DDTHH:MM (UTC)")
            return None
    elif form.duration in DURATIONS:
        end = max(start or now, now) + timedelta(seconds=DURATIONS[form.duration])
    else:
        form.problems.append(f"duration must be one of {', '.join(DURATIONS)}")
        return None
    if end <= now:
        form.problems.append("ends at: must be in the future")
        return None
    if end > now + MAX_SILENCE:
        form.problems.append("ends at: at most 7 days from now")
        return None
    return end


def local_input(value: datetime) -> str:
    """A time as the form's ``datetime-local`` field shows it (UTC, to the minute)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
