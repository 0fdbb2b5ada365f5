"""The API's per-organization notification preferences and who is on call.

Settings: a token of every organization sees every organization's (those with alerts in the last
90 days); a token limited to organizations sees theirs (asking for another is a 403). A viewer
token reads the recipients' phone numbers and addresses masked (``console/contacts.py``,
``recipients_masked``). An admin token changes the preferences (``PUT settings/{organization}``)
and thresholds (``PUT|DELETE settings/{organization}/thresholds/{alertname}``) of the
organizations it sees (another: 403, nothing changed), validated as the console's form, audited,
and the routing reloaded. On-call: every schedule of ``ONCALL_CONFIG``
with who holds it now (overrides included) and who is next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from bridge.model import SEVERITIES
from bridge.oncall.schedule import Shift as ScheduleShift
from bridge.oncall.schedule import current_shifts, next_handoff
from bridge.storage.console import AuditEntry
from bridge.storage.types import PreferenceRow
from bridge.webhook import clean_text
from console.api.common import ApiError, answer, api, organization_filter, read_body
from console.api.schema import (
    Oncall,
    Preference,
    PreferenceChange,
    Schedule,
    Settings,
    Shift,
    ThresholdChange,
)
from console.api.tokens import Principal
from console.contacts import reads_contacts, recipients_for
from console.forms import (
    ORGANIZATION,
    TUNABLE,
    FormError,
    parse_configuration,
    parse_preference,
)

SETTINGS_SINCE = timedelta(days=90)  # organizations with alerts since then are listed
_OVERRIDES_BEFORE, _OVERRIDES_AFTER = timedelta(days=60), timedelta(days=400)


def _preference(organization_id: str, row: PreferenceRow | None, role: str) -> Preference:
    masked = not reads_contacts(role)
    if row is None:
        return Preference(organization_id, False, None, {}, "low", None, None, "UTC", masked)
    return Preference(
        organization_id,
        True,
        row.channels,
        recipients_for(role, row.recipients),
        row.min_severity,
        row.quiet_hours_start.isoformat() if row.quiet_hours_start else None,
        row.quiet_hours_end.isoformat() if row.quiet_hours_end else None,
        row.timezone,
        masked,
    )


async def get_settings(request: web.Request, who: Principal) -> web.StreamResponse:
    state = api(request)
    asked = organization_filter(request, who)
    if asked:
        names = [asked]
    elif who.organizations is not None:
        names = list(who.organizations)
    else:
        names = await state.store.organizations(state.now() - SETTINGS_SINCE)
    rows = [_preference(n, await state.store.preference(n), who.role) for n in names]
    return answer(Settings(rows))


def _organization(request: web.Request, who: Principal) -> str:
    """The organization of the path: 400 when it cannot be one, 403 outside the token's."""
    value = request.match_info["organization"]
    if not ORGANIZATION.match(value):
        raise ApiError(400, "organization: 1-128 letters, digits, '_', '.', ':' or '-'")
    if not who.sees(value):
        raise ApiError(403, f"organization {value} is outside the token's organizations")
    return value


def _entry(state_now: datetime, who: Principal, action: str, **detail: object) -> AuditEntry:
    return AuditEntry(
        state_now, who.username, action, detail={**detail, "via": "api", "token": who.token_name}
    )


def _preference_form(body: PreferenceChange) -> dict[str, str]:
    """The body as the console's form (``parse_preference`` validates both alike)."""
    unknown = [k for k in body.channels if k not in SEVERITIES]
    if unknown:
        raise ApiError(
            400,
            f"channels: unknown severity {clean_text(unknown[0])[:40]!r}"
            f" (known: {', '.join(SEVERITIES)})",
        )
    form = {f"channels_{k}": ", ".join(v) for k, v in body.channels.items()}
    form |= {
        "email": ", ".join(body.email),
        "sms": ", ".join(body.sms),
        "min_severity": body.min_severity,
        "quiet_hours_start": body.quiet_hours_start or "",
        "quiet_hours_end": body.quiet_hours_end or "",
        "timezone": body.timezone,
    }
    return {k: clean_text(v) for k, v in form.items()}


async def put_preferences(request: web.Request, who: Principal) -> web.StreamResponse:
    state = api(request)
    org = _organization(request, who)
    body = await read_body(request, PreferenceChange)
    try:
        row = parse_preference(org, _preference_form(body))
    except FormError as exc:
        raise ApiError(400, "; ".join(exc.problems)) from None
    entry = _entry(
        state.now(),
        who,
        "changed preferences",
        organization_id=org,
        channels=row.channels,
        min_severity=row.min_severity,
        timezone=row.timezone,
    )
    await state.store.save_preference(row, state.now(), entry)
    await state.host.reload_routing()
    return answer(_preference(org, await state.store.preference(org), who.role))


def _alertname(request: web.Request) -> str:
    name = request.match_info["alertname"]
    if name not in TUNABLE:
        raise ApiError(400, f"alert name must be one of {', '.join(TUNABLE)}")
    return name


async def put_threshold(request: web.Request, who: Principal) -> web.StreamResponse:
    state = api(request)
    org = _organization(request, who)
    alertname = _alertname(request)
    body = await read_body(request, ThresholdChange)
    form = {
        "alertname": alertname,
        "threshold": "" if body.threshold is None else repr(body.threshold),
        "enabled": "on" if body.enabled else "",
    }
    try:
        row = parse_configuration(org, form)
    except FormError as exc:
        raise ApiError(400, "; ".join(exc.problems)) from None
    entry = _entry(
        state.now(),
        who,
        "changed threshold",
        organization_id=org,
        alertname=alertname,
        threshold=row.threshold,
        enabled=row.enabled,
    )
    await state.store.save_configuration(row, state.now(), entry)
    await state.host.reload_routing()
    return web.Response(status=204)


async def delete_threshold(request: web.Request, who: Principal) -> web.StreamResponse:
    state = api(request)
    org = _organization(request, who)
    alertname = _alertname(request)
    entry = _entry(state.now(), who, "removed threshold", organization_id=org, alertname=alertname)
    await state.store.delete_configuration(org, alertname, entry)
    await state.host.reload_routing()
    return web.Response(status=204)


def _shift(state_people: dict[str, str], shift: ScheduleShift) -> Shift:
    return Shift(
        shift.person_id,
        state_people.get(shift.person_id, shift.person_id),
        shift.start,
        shift.end,
        shift.override_id,
    )


async def get_oncall(request: web.Request, who: Principal) -> web.StreamResponse:
    state = api(request)
    at = state.now()
    text = request.query.get("at", "")
    if text:
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ApiError(400, "at: an ISO 8601 time, e.g. 2026-12-07T09:00:00Z") from None
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        if not datetime(2000, 1, 1, tzinfo=UTC) <= at <= datetime(2200, 1, 1, tzinfo=UTC):
            raise ApiError(400, "at: between 2000 and 2200")
    config = state.host.oncall()
    if config is None:
        return answer(Oncall(False, at, []))
    overrides = await state.host.storage.overrides(at - _OVERRIDES_BEFORE, at + _OVERRIDES_AFTER)
    names = {p.id: p.name for p in config.people.values()}
    schedules = []
    for schedule in config.schedules.values():
        following = next_handoff(config, schedule.id, at, overrides)
        schedules.append(
            Schedule(
                schedule.id,
                schedule.time_zone.key,
                [_shift(names, s) for s in current_shifts(config, schedule.id, at, overrides)],
                _shift(names, following) if following else None,
            )
        )
    return answer(Oncall(True, at, schedules))
