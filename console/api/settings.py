"""The API's per-organization notification preferences and who is on call.

Settings: a token of every organization sees every organization's (those with alerts in the last
90 days); a token limited to organizations sees theirs (asking for another is a 403). A viewer
token reads the recipients' phone numbers and addresses masked (``console/contacts.py``,
``recipients_masked``). On-call: every schedule of ``ONCALL_CONFIG``
with who holds it now (overrides included) and who is next."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from bridge.oncall.schedule import Shift as ScheduleShift
from bridge.oncall.schedule import current_shifts, next_handoff
from bridge.storage.types import PreferenceRow
from console.api.common import ApiError, answer, api, organization_filter
from console.api.schema import Oncall, Preference, Schedule, Settings, Shift
from console.api.tokens import Principal
from console.contacts import reads_contacts, recipients_for

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
