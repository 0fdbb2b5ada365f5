"""The Silences page: every Alertmanager's silences (``alertmanagers.py``), expire and edit
them, and the silence form (prefilled from an alert or an incident, with a preview of the
firing alerts it would match) that makes one in every Alertmanager.

Viewers read the list; responders act (as for the alert page's silence). A user limited to
organizations sees only the silences pinned to one of theirs (``organization_id="X"``) and
creates, edits and expires only those. Silences are kept on the wall clock (Alertmanager's),
whatever clock the host runs on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bridge.storage import ALERT_TABLES
from bridge.storage.console import AlertRow, ConsoleUser
from console.alertmanagers import (
    AlertmanagerError,
    AlertmanagerRefused,
    Alertmanagers,
    AmSilence,
)
from console.common import (
    BIGINT_MAX,
    PREFIX,
    Console,
    Handler,
    _audit,
    _back,
    _console,
    _forbidden,
    _form,
    _problem,
    _row_id,
    _visitor,
    render,
    require,
)
from console.silence_forms import (
    DURATIONS,
    SilenceForm,
    end_of,
    local_input,
    matchers_of,
    read_form,
    rows_from_alert,
    rows_from_incident,
    rows_from_silence,
)
from console.silence_matchers import SilenceMatcher, matches_all, may_set, visible_to

PREVIEW_SCAN = 5000  # firing alerts the preview reads (newest first)
PREVIEW_SHOWN = 50
EXPIRED_SHOWN = 50
_ORDER = {"active": 0, "pending": 1, "expired": 2}


def alertmanagers(console: Console) -> Alertmanagers:
    assert console.http is not None
    return Alertmanagers(console.http, console.host.alertmanager_urls)


def _user(request: web.Request) -> ConsoleUser:
    user = _visitor(request).user
    assert user is not None
    return user


def _sorted(silences: list[AmSilence]) -> list[AmSilence]:
    """Active by end (soonest first), pending by start, then the latest expired."""

    def key(s: AmSilence) -> tuple[int, float]:
        if s.state == "active":
            return (0, s.ends_at.timestamp())
        if s.state == "pending":
            return (1, s.starts_at.timestamp())
        return (2, -s.ends_at.timestamp())

    ordered = sorted(silences, key=key)
    expired = [s for s in ordered if s.state == "expired"][:EXPIRED_SHOWN]
    return [s for s in ordered if s.state != "expired"] + expired


async def silences_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _user(request)
    listing = await alertmanagers(console).listing()
    mine = [s for s in listing.silences if visible_to(user, s.matchers)]
    counts = {state: sum(1 for s in mine if s.state == state) for state in _ORDER}
    return render(
        request,
        "silences.html",
        silences=_sorted(mine),
        counts=counts,
        unreachable=listing.unreachable,
        alertmanagers=listing.alertmanagers,
        wall=datetime.now(UTC),
        can_act=user.role in ("responder", "admin"),
        may_act=lambda s: may_set(user, s.matchers),
        highlight=request.query.get("id", ""),
        notice=request.query.get("notice", ""),
    )


# -- the form -------------------------------------------------------------------------------


async def _alert_of(request: web.Request, origin: str) -> AlertRow:
    table, _, ident = origin.removeprefix("alert:").partition("/")
    if table not in ALERT_TABLES or not ident.isascii() or not ident.isdigit():
        raise web.HTTPNotFound(text="no such alert")
    alert = await _console(request).store.alert(table, min(int(ident), BIGINT_MAX))
    if alert is None:
        raise web.HTTPNotFound(text="no such alert")
    if not _user(request).sees(alert.organization_id):
        raise _forbidden(request, "This alert is outside your organizations.")
    return alert


async def _incident_alerts(request: web.Request, origin: str) -> tuple[int, list[AlertRow]]:
    user = _user(request)
    ident = _row_id(origin.removeprefix("incident:"))
    store = _console(request).store
    incident = await store.incident(ident, None)
    if incident is None:
        raise web.HTTPNotFound(text="no such incident")
    if not incident.within(user.organizations):
        raise _forbidden(request, f"Incident #{ident} is outside your organizations.")
    return ident, await store.incident_alerts([ident], user.organizations)


async def _origin_detail(request: web.Request, origin: str) -> tuple[AlertRow | None, dict]:
    """The alert the form came from (its audit entry goes on that alert's timeline) or the
    incident's id, checked again on every POST (a hidden field is the client's)."""
    if origin.startswith("alert:"):
        return await _alert_of(request, origin), {}
    if origin.startswith("incident:"):
        ident, _ = await _incident_alerts(request, origin)
        return None, {"incident": ident}
    return None, {}


@require("responder")
async def new_silence_page(request: web.Request) -> web.StreamResponse:
    query = request.query
    if "alert" in query:
        origin = f"alert:{query['alert']}"
        alert = await _alert_of(request, origin)
        rows = rows_from_alert(alert)
        comment = f"{alert.alertname}: {alert.summary}"[:200]
    elif "incident" in query:
        origin = f"incident:{query['incident']}"
        ident, alerts = await _incident_alerts(request, origin)
        rows = rows_from_incident(alerts)
        comment = f"Incident #{ident}"
    else:
        origin, rows, comment = "", [], ""
    form = SilenceForm(rows, comment=comment, origin=origin)
    return _form_page(request, form, None, None)


def _form_page(
    request: web.Request,
    form: SilenceForm,
    editing: AmSilence | None,
    preview: list[AlertRow] | None,
    status: int = 200,
    total: int = 0,
) -> web.Response:
    return render(
        request,
        "silence_form.html",
        status=status,
        form=form,
        rows=form.with_blanks(),
        editing=editing,
        preview=preview,
        preview_total=total,
        durations=DURATIONS,
        wall=datetime.now(UTC),
        alertmanagers=alertmanagers(_console(request)).names.values(),
    )


async def _preview(request: web.Request, matchers: list[SilenceMatcher]) -> list[AlertRow]:
    user = _user(request)
    firing = await _console(request).store.firing(PREVIEW_SCAN)
    return [a for a in firing if user.sees(a.organization_id) and matches_all(matchers, a.labels)]


async def _checked(
    request: web.Request, form: SilenceForm, editing: AmSilence | None
) -> tuple[list[SilenceMatcher], datetime | None]:
    matchers = matchers_of(form)
    now = datetime.now(UTC)
    start = editing.starts_at if editing is not None and editing.state == "pending" else None
    end = end_of(form, now, start)
    if not form.problems and not may_set(_user(request), matchers):
        form.status = 403
        form.problems.append(
            'you are limited to organizations: keep one matcher organization_id="..." of'
            " yours (checked, with =)"
        )
    return matchers, end


def _body(
    matchers: list[SilenceMatcher], start: datetime, end: datetime, user: str, comment: str
) -> dict[str, Any]:
    return {
        "matchers": [m.to_alertmanager() for m in matchers],
        "startsAt": start.isoformat(),
        "endsAt": end.isoformat(),
        "createdBy": user,
        "comment": comment or f"silenced from the console by {user}",
    }


async def _preview_or_refuse(
    request: web.Request,
    form: SilenceForm,
    editing: AmSilence | None,
    matchers: list[SilenceMatcher],
    action: str,
) -> web.Response | None:
    """The form again: with its problems (400), or with the preview asked for."""
    if form.problems:
        return _form_page(request, form, editing, None, status=form.status)
    if action == "preview":
        found = await _preview(request, matchers)
        return _form_page(request, form, editing, found[:PREVIEW_SHOWN], total=len(found))
    return None


@require("responder")
async def create_silence(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    raw = await _form(request)
    form = read_form(raw)
    alert, detail = await _origin_detail(request, form.origin)
    matchers, end = await _checked(request, form, None)
    shown = await _preview_or_refuse(request, form, None, matchers, raw.get("action", ""))
    if shown is not None:
        return shown
    assert end is not None
    user = _user(request)
    body = _body(matchers, datetime.now(UTC), end, user.username, form.comment)
    try:
        created = await alertmanagers(console).create(body)
    except AlertmanagerRefused as exc:
        form.problems.append(str(exc))
        return _form_page(request, form, None, None, status=400)
    except AlertmanagerError as exc:
        return _problem(request, 502, str(exc))
    await console.store.audit(
        _audit(
            request,
            "silenced",
            alert,
            **detail,
            silence_id=created.id,
            silence_ids=created.ids,
            matchers=[str(m) for m in matchers],
            comment=body["comment"],
            ends_at=body["endsAt"],
        )
    )
    notice = f"silence {created.id} created in {', '.join(created.ids)}"
    if created.failed:
        notice += "; NOT in " + ", ".join(f"{k} ({v})" for k, v in created.failed.items())
    raise _back(f"{PREFIX}/silences?id={created.id}", notice)


# -- one silence ----------------------------------------------------------------------------


async def _silence_or_404(request: web.Request) -> AmSilence:
    """The silence of the path: 404 when there is none, 403 when it is outside this user's
    organizations; 502 when no Alertmanager answers."""
    ident = request.match_info["id"]
    if not ident.isascii() or not (8 <= len(ident) <= 64) or not ident.replace("-", "").isalnum():
        raise web.HTTPNotFound(text="no such silence")
    try:
        found = await alertmanagers(_console(request)).find(ident)
    except AlertmanagerError as exc:
        raise _Unavailable(str(exc)) from None
    if found is None:
        raise web.HTTPNotFound(text="no such silence")
    if not visible_to(_user(request), found.matchers):
        raise _forbidden(request, "This silence is outside your organizations.")
    return found


class _Unavailable(Exception):
    pass


def _acting(handler: Handler) -> Handler:
    """The handler with an unreachable Alertmanager shown as a 502 page."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except _Unavailable as exc:
            return _problem(request, 502, f"No Alertmanager answered: {exc}")

    return wrapped


def _refuse_limited(request: web.Request, silence: AmSilence) -> web.Response | None:
    if not may_set(_user(request), silence.matchers):
        return _problem(request, 403, "That silence is not pinned to one of your organizations.")
    return None


@require("responder")
@_acting
async def edit_silence_page(request: web.Request) -> web.StreamResponse:
    silence = await _silence_or_404(request)
    if (refused := _refuse_limited(request, silence)) is not None:
        return refused
    if silence.state == "expired":
        return _problem(request, 409, "That silence has expired; create a new one.")
    form = SilenceForm(
        rows_from_silence(silence), ends_at=local_input(silence.ends_at), comment=silence.comment
    )
    return _form_page(request, form, silence, None)


@require("responder")
@_acting
async def edit_silence(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    silence = await _silence_or_404(request)
    if (refused := _refuse_limited(request, silence)) is not None:
        return refused
    if silence.state == "expired":
        return _problem(request, 409, "That silence has expired; create a new one.")
    raw = await _form(request)
    form = read_form(raw)
    form.origin = ""
    matchers, end = await _checked(request, form, silence)
    shown = await _preview_or_refuse(request, form, silence, matchers, raw.get("action", ""))
    if shown is not None:
        return shown
    assert end is not None
    user = _user(request)
    # the start kept (active: it has begun; pending: as it was), so that a change of end or
    # comment alone is an update in place (the same id)
    body = _body(matchers, silence.starts_at, end, user.username, form.comment)
    try:
        ident = await alertmanagers(console).replace(silence, body)
    except AlertmanagerRefused as exc:
        form.problems.append(str(exc))
        return _form_page(request, form, silence, None, status=400)
    except AlertmanagerError as exc:
        return _problem(request, 502, str(exc))
    await console.store.audit(
        _audit(
            request,
            "edited silence",
            silence_id=ident,
            replaced=silence.id,
            matchers=[str(m) for m in matchers],
            comment=body["comment"],
            ends_at=body["endsAt"],
        )
    )
    notice = f"silence {ident} saved" + (
        f" (it replaces {silence.id}, now expired)" if ident != silence.id else ""
    )
    raise _back(f"{PREFIX}/silences?id={ident}", notice)


@require("responder")
@_acting
async def expire_silence(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    silence = await _silence_or_404(request)
    if (refused := _refuse_limited(request, silence)) is not None:
        return refused
    if silence.state == "expired":
        raise _back(f"{PREFIX}/silences", f"silence {silence.id} had already expired")
    try:
        await alertmanagers(console).expire(silence)
    except AlertmanagerError as exc:
        return _problem(request, 502, str(exc))
    await console.store.audit(_audit(request, "expired silence", silence_id=silence.id))
    raise _back(f"{PREFIX}/silences", f"silence {silence.id} expired")
