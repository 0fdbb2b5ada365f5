"""The API's request and response bodies, as msgspec structs: the handlers encode and decode
them, and ``routes.openapi_document`` derives their JSON Schemas from the same classes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

MAX_SILENCE_SECONDS = 7 * 86400

Text = Annotated[str, msgspec.Meta(max_length=1024)]
LabelName = Annotated[str, msgspec.Meta(pattern="^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=128)]


class Error(msgspec.Struct):
    """Every refusal: ``{"error": "..."}`` with a 4xx (or 5xx) status."""

    error: str


class Incident(msgspec.Struct):
    id: int
    title: str
    severity: str
    status: str  # firing | acknowledged | resolved
    probable_cause: str
    organizations: list[str]
    alert_count: int
    opened_at: datetime
    last_alert_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    ack_expires_at: datetime | None = None  # an acknowledgement's chosen end
    snoozed_until: datetime | None = None  # snoozed: off the Now page, pages held, till then
    assignee: str | None = None  # a console user's name


class IncidentPage(msgspec.Struct):
    incidents: list[Incident]
    next_cursor: str | None  # pass as ?cursor= for the next page; null: the last page


class Alert(msgspec.Struct):
    id: str  # "<category>-<row id>", e.g. "payment-12"
    category: str
    alertname: str
    status: str
    severity: str
    organization_id: str | None
    summary: str
    description: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    received_at: datetime
    incident_id: int | None


class AlertPage(msgspec.Struct):
    alerts: list[Alert]
    next_cursor: str | None


class TimelineEntry(msgspec.Struct):
    at: datetime
    kind: str
    detail: dict[str, Any]


class IncidentDetail(msgspec.Struct):
    incident: Incident
    alerts: list[Alert]  # within the token's organizations
    timeline: list[TimelineEntry]


class ActionDone(msgspec.Struct):
    incident_id: int
    action: str
    changed: bool  # False: it already was in that state
    status: str


class Acknowledge(msgspec.Struct, forbid_unknown_fields=True):
    """How long the acknowledgement lasts: ``expires_in_seconds`` (then it fires and escalates
    again), or ``until_resolved``; neither: as the escalation policy says (no body needed)."""

    expires_in_seconds: Annotated[int, msgspec.Meta(ge=60, le=MAX_SILENCE_SECONDS)] | None = None
    until_resolved: bool = False


class Snooze(msgspec.Struct, forbid_unknown_fields=True):
    """Off the Now page, its pages and escalation steps held, for this long (not acknowledged;
    unlike a silence, Alertmanager still sends its alerts)."""

    duration_seconds: Annotated[int, msgspec.Meta(ge=60, le=MAX_SILENCE_SECONDS)]


class Assign(msgspec.Struct, forbid_unknown_fields=True):
    """To a console user who can see the incident; "" for nobody."""

    assignee: Annotated[str, msgspec.Meta(max_length=128)]


class Note(msgspec.Struct, forbid_unknown_fields=True):
    """Free text on the incident's timeline (no NUL)."""

    text: Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]


class Matcher(msgspec.Struct, forbid_unknown_fields=True):
    name: LabelName
    value: Text
    isRegex: bool = False
    isEqual: bool = True


class NewSilence(msgspec.Struct, forbid_unknown_fields=True):
    matchers: Annotated[list[Matcher], msgspec.Meta(min_length=1, max_length=32)]
    duration_seconds: Annotated[int, msgspec.Meta(ge=60, le=MAX_SILENCE_SECONDS)]
    comment: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class Silence(msgspec.Struct):
    id: str
    status: str  # active | pending | expired
    matchers: list[Matcher]
    starts_at: str
    ends_at: str
    created_by: str
    comment: str
    alertmanagers: list[str] = []  # the Alertmanagers holding it (host:port)
    silenced_alerts: int = 0  # firing alerts it silences now (Alertmanager's count)


class SilenceList(msgspec.Struct):
    silences: list[Silence]
    # Alertmanagers that did not answer (host:port -> why): their silences are missing
    unreachable: dict[str, str] = {}


class SilenceCreated(msgspec.Struct):
    id: str
    # where it was made: once per cluster of Alertmanagers, each its own id (the first is id)
    alertmanagers: list[str] = []
    failed: dict[str, str] = {}  # Alertmanagers that did not take it -> why


class SilenceEdited(msgspec.Struct):
    id: str  # the same, or a new id when Alertmanager replaced the silence (matchers changed)
    replaced: str  # the id edited


class SilencePreviewRequest(msgspec.Struct, forbid_unknown_fields=True):
    matchers: Annotated[list[Matcher], msgspec.Meta(min_length=1, max_length=32)]


class SilencePreview(msgspec.Struct):
    alerts: list[Alert]  # the firing alerts (within the token's organizations), first 200
    total: int  # how many match in all


class Preference(msgspec.Struct):
    organization_id: str
    configured: bool  # False: the defaults (the severity table) apply
    channels: Any  # null, a list of channels, or {severity: [channel, ...]}
    recipients: dict[str, list[str]]
    min_severity: str
    quiet_hours_start: str | None
    quiet_hours_end: str | None
    timezone: str
    recipients_masked: bool = False  # a viewer token: phone numbers and addresses masked


class Settings(msgspec.Struct):
    organizations: list[Preference]


_Short = Annotated[str, msgspec.Meta(max_length=254)]
_Few = Annotated[list[_Short], msgspec.Meta(max_length=50)]


class PreferenceChange(msgspec.Struct, forbid_unknown_fields=True):
    """An organization's notification preferences, replacing what is stored: channels per
    severity (none: the severity table's), recipients, minimum severity, quiet hours (HH:MM,
    both or neither) in a time zone (IANA)."""

    channels: dict[_Short, _Few] = msgspec.field(default_factory=dict)
    email: _Few = msgspec.field(default_factory=list)
    sms: _Few = msgspec.field(default_factory=list)  # E.164
    min_severity: _Short = "low"
    quiet_hours_start: _Short | None = None
    quiet_hours_end: _Short | None = None
    timezone: _Short = "UTC"


class ThresholdChange(msgspec.Struct, forbid_unknown_fields=True):
    """One alert's threshold for an organization (null: the rule's default) and whether it
    fires there at all."""

    threshold: float | None = None
    enabled: bool = True


class Shift(msgspec.Struct):
    person_id: str
    name: str
    start: datetime
    end: datetime
    override_id: int | None


class Schedule(msgspec.Struct):
    id: str
    time_zone: str
    now: list[Shift]
    next: Shift | None


class Oncall(msgspec.Struct):
    configured: bool  # False: ONCALL_CONFIG is not set
    at: datetime
    schedules: list[Schedule]


RESPONSES: tuple[type[msgspec.Struct], ...] = (
    Error,
    IncidentPage,
    IncidentDetail,
    ActionDone,
    AlertPage,
    Alert,
    SilenceList,
    SilenceCreated,
    SilenceEdited,
    SilencePreview,
    Silence,
    Settings,
    Oncall,
)
