"""The API's silences, kept by Alertmanager (API v2), in every configured Alertmanager
(``console/alertmanagers.py``, as the console's Silences page): list (merged by id, with the
Alertmanagers holding each, the firing alerts each silences, and those that did not answer),
create (once per cluster), edit (replace), expire, and preview (the firing alerts matchers
would silence, matched here as Alertmanager matches: ``console/silence_matchers.py``).

Matchers are checked before any Alertmanager is asked (label names, RE2 regexes of at most 512
characters, not every matcher matching the empty string). A token limited to some
organizations sees, edits and expires only the silences with an exact ``organization_id="X"``
matcher for one of them (another's is a 403), and every silence it creates or edits must
carry exactly one: it cannot silence another organization's alerts (or every organization's)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bridge.storage.console import AuditEntry
from bridge.webhook import clean_text
from console.alertmanagers import AlertmanagerError, AlertmanagerRefused, Alertmanagers, AmSilence
from console.api.common import ApiError, answer, api, read_body
from console.api.incidents import alert_body
from console.api.schema import (
    Matcher,
    NewSilence,
    Silence,
    SilenceCreated,
    SilenceEdited,
    SilenceList,
    SilencePreview,
    SilencePreviewRequest,
)
from console.api.tokens import Principal
from console.silence_matchers import (
    MatcherProblem,
    SilenceMatcher,
    check,
    matches_all,
    may_set,
    visible_to,
)

_SILENCE_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
PREVIEW_SCAN = 5000  # firing alerts a preview reads, newest first
PREVIEW_LIMIT = 200  # of them returned
_LIMITED = (
    "a token limited to organizations silences only their alerts: exactly one"
    ' matcher organization_id="..." of them'
)


def _alertmanagers(request: web.Request) -> Alertmanagers:
    state = api(request)
    assert state.http is not None
    return Alertmanagers(state.http, state.host.alertmanager_urls)


def matchers_of(given: list[Matcher]) -> list[SilenceMatcher]:
    """The body's matchers, checked as Alertmanager would (400 naming every problem)."""
    problems, found = [], []
    for m in given:
        try:
            found.append(SilenceMatcher.checked(m.name, m.value, m.isRegex, m.isEqual))
        except MatcherProblem as exc:
            problems.append(str(exc))
    if not problems:
        try:
            check(found)
        except MatcherProblem as exc:
            problems.append(str(exc))
    if problems:
        raise ApiError(400, "; ".join(problems))
    return found


def _silence(found: AmSilence) -> Silence:
    return Silence(
        id=found.id,
        status=found.state,
        matchers=[Matcher(m.name, m.value, m.is_regex, m.is_equal) for m in found.matchers],
        starts_at=found.starts_at.isoformat(),
        ends_at=found.ends_at.isoformat(),
        created_by=found.created_by,
        comment=found.comment,
        alertmanagers=list(found.held_by),
        silenced_alerts=found.silencing,
    )


def _body(
    matchers: list[SilenceMatcher], start: datetime, end: datetime, who: Principal, comment: str
) -> dict[str, Any]:
    return {
        "matchers": [m.to_alertmanager() for m in matchers],
        "startsAt": start.isoformat(),
        "endsAt": end.isoformat(),
        "createdBy": f"{who.username} (api)",
        "comment": comment,
    }


async def _audit(request: web.Request, who: Principal, action: str, **detail: Any) -> None:
    state = api(request)
    detail = {**detail, "via": "api", "token": who.token_name}
    await state.store.audit(AuditEntry(state.now(), who.username, action, detail=detail))


def _described(matchers: list[SilenceMatcher]) -> list[str]:
    # as sent to Alertmanager, control characters (NUL among them, which PostgreSQL's jsonb
    # cannot hold) replaced
    return [f"{m.name}{m.op}{clean_text(m.value)!r}" for m in matchers]


async def list_silences(request: web.Request, who: Principal) -> web.StreamResponse:
    listing = await _alertmanagers(request).listing()
    if listing.unreachable and len(listing.unreachable) == len(listing.alertmanagers):
        raise ApiError(
            502,
            "no Alertmanager answered: "
            + "; ".join(f"{k}: {v}" for k, v in sorted(listing.unreachable.items())),
        )
    shown = [_silence(s) for s in listing.silences if visible_to(who, s.matchers)]
    return answer(SilenceList(shown, unreachable=listing.unreachable))


async def create_silence(request: web.Request, who: Principal) -> web.StreamResponse:
    wanted = await read_body(request, NewSilence)
    matchers = matchers_of(wanted.matchers)
    if not may_set(who, matchers):
        raise ApiError(403, _LIMITED)
    # Alertmanager's clock, not the host's: the silence starts now by the wall clock
    now = datetime.now(UTC)
    end = now + timedelta(seconds=wanted.duration_seconds)
    body = _body(matchers, now, end, who, wanted.comment)
    try:
        created = await _alertmanagers(request).create(body)
    except AlertmanagerRefused as exc:
        raise ApiError(400, str(exc)) from None
    except AlertmanagerError as exc:
        raise ApiError(502, str(exc)) from None
    await _audit(
        request,
        who,
        "silenced",
        silence_id=created.id,
        silence_ids=created.ids,
        matchers=_described(matchers),
        comment=clean_text(wanted.comment),
        ends_at=body["endsAt"],
    )
    return answer(SilenceCreated(created.id, list(created.ids), created.failed), 201)


async def _visible_silence(request: web.Request, who: Principal) -> AmSilence:
    ident = request.match_info["id"]
    if not _SILENCE_ID.match(ident):
        raise ApiError(404, "no such silence")
    try:
        found = await _alertmanagers(request).find(ident)
    except AlertmanagerError as exc:
        raise ApiError(502, f"no Alertmanager answered: {exc}") from None
    if found is None:
        raise ApiError(404, "no such silence")
    if not visible_to(who, found.matchers):
        raise ApiError(403, f"silence {ident} is outside the token's organizations")
    if not may_set(who, found.matchers):
        raise ApiError(403, _LIMITED)
    return found


async def edit_silence(request: web.Request, who: Principal) -> web.StreamResponse:
    wanted = await read_body(request, NewSilence)
    matchers = matchers_of(wanted.matchers)
    silence = await _visible_silence(request, who)
    if not may_set(who, matchers):
        raise ApiError(403, _LIMITED)
    if silence.state == "expired":
        raise ApiError(409, "the silence has expired; create a new one")
    now = datetime.now(UTC)
    # pending: the duration from its start; active: from now (its start kept, so that a change
    # of end or comment alone is an update in place)
    end = max(silence.starts_at, now) + timedelta(seconds=wanted.duration_seconds)
    body = _body(matchers, silence.starts_at, end, who, wanted.comment)
    try:
        ident = await _alertmanagers(request).replace(silence, body)
    except AlertmanagerRefused as exc:
        raise ApiError(400, str(exc)) from None
    except AlertmanagerError as exc:
        raise ApiError(502, str(exc)) from None
    await _audit(
        request,
        who,
        "edited silence",
        silence_id=ident,
        replaced=silence.id,
        matchers=_described(matchers),
        comment=clean_text(wanted.comment),
        ends_at=body["endsAt"],
    )
    return answer(SilenceEdited(ident, silence.id))


async def expire_silence(request: web.Request, who: Principal) -> web.StreamResponse:
    silence = await _visible_silence(request, who)
    if silence.state != "expired":
        try:
            await _alertmanagers(request).expire(silence)
        except AlertmanagerError as exc:
            raise ApiError(502, str(exc)) from None
        await _audit(request, who, "expired silence", silence_id=silence.id)
    return web.Response(status=204)


async def preview_silence(request: web.Request, who: Principal) -> web.StreamResponse:
    wanted = await read_body(request, SilencePreviewRequest)
    matchers = matchers_of(wanted.matchers)
    firing = await api(request).store.firing(PREVIEW_SCAN)
    found = [a for a in firing if who.sees(a.organization_id) and matches_all(matchers, a.labels)]
    return answer(SilencePreview([alert_body(a) for a in found[:PREVIEW_LIMIT]], len(found)))
