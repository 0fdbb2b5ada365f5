"""The API's silences, kept by Alertmanager (API v2): list, create (matchers validated here
first), expire.

A token limited to some organizations sees and expires only the silences with an exact
``organization_id="X"`` matcher for one of them (expiring another is a 403), and every silence
it creates must carry one: it cannot silence another organization's alerts (or every
organization's)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiohttp import web

from bridge.storage.console import AuditEntry
from bridge.webhook import clean_text
from console.api.common import ApiError, answer, api, read_body
from console.api.schema import Matcher, NewSilence, Silence, SilenceCreated, SilenceList
from console.api.tokens import Principal

_SILENCE_ID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)


def _matches_empty(m: Matcher) -> bool:
    hit = re.fullmatch(m.value, "") is not None if m.isRegex else m.value == ""
    return hit if m.isEqual else not hit


def matcher_problems(matchers: list[Matcher]) -> list[str]:
    """What Alertmanager would refuse, said before asking it: regexes that do not compile,
    and a silence every one of whose matchers matches the empty string (it would silence
    everything)."""
    problems = []
    for m in matchers:
        if m.isRegex:
            try:
                re.compile(m.value)
            except re.error as exc:
                problems.append(f"matcher {m.name}: invalid regex ({exc})")
    if not problems and all(_matches_empty(m) for m in matchers):
        problems.append("at least one matcher must not match the empty string")
    return problems


def _organizations_of(matchers: list[Matcher]) -> set[str]:
    return {
        m.value for m in matchers if m.name == "organization_id" and m.isEqual and not m.isRegex
    }


def visible(who: Principal, matchers: list[Matcher]) -> bool:
    if who.organizations is None:
        return True
    return any(who.sees(o) for o in _organizations_of(matchers))


def _silence(raw: dict[str, Any]) -> Silence:
    return Silence(
        id=str(raw.get("id", "")),
        status=str((raw.get("status") or {}).get("state", "")),
        matchers=[
            Matcher(
                str(m.get("name", "")),
                str(m.get("value", "")),
                bool(m.get("isRegex", False)),
                bool(m.get("isEqual", True)),
            )
            for m in raw.get("matchers") or []
        ],
        starts_at=str(raw.get("startsAt", "")),
        ends_at=str(raw.get("endsAt", "")),
        created_by=str(raw.get("createdBy", "")),
        comment=str(raw.get("comment", "")),
    )


async def _alertmanager(
    request: web.Request, method: str, path: str, body: Any = None
) -> httpx.Response:
    state = api(request)
    assert state.http is not None
    url = state.host.alertmanager_url.rstrip("/") + path
    try:
        return await state.http.request(method, url, json=body, timeout=10.0)
    except httpx.HTTPError as exc:
        raise ApiError(502, f"Alertmanager unreachable: {type(exc).__name__}") from None


async def list_silences(request: web.Request, who: Principal) -> web.StreamResponse:
    response = await _alertmanager(request, "GET", "/api/v2/silences")
    if response.status_code != 200:
        raise ApiError(502, f"Alertmanager answered {response.status_code}")
    found = [_silence(s) for s in response.json() if isinstance(s, dict)]
    return answer(SilenceList([s for s in found if visible(who, s.matchers)]))


async def create_silence(request: web.Request, who: Principal) -> web.StreamResponse:
    wanted = await read_body(request, NewSilence)
    problems = matcher_problems(wanted.matchers)
    if problems:
        raise ApiError(400, "; ".join(problems))
    if who.organizations is not None:
        chosen = _organizations_of(wanted.matchers)
        if len(chosen) != 1 or not who.sees(next(iter(chosen))):
            raise ApiError(
                403,
                "a token limited to organizations silences only their alerts: add one"
                ' matcher organization_id="..." of them',
            )
    state = api(request)
    # Alertmanager's clock, not the host's: the silence starts now by the wall clock
    now = datetime.now(UTC)
    body = {
        "matchers": [
            {"name": m.name, "value": m.value, "isRegex": m.isRegex, "isEqual": m.isEqual}
            for m in wanted.matchers
        ],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(seconds=wanted.duration_seconds)).isoformat(),
        "createdBy": f"{who.username} (api)",
        "comment": wanted.comment,
    }
    response = await _alertmanager(request, "POST", "/api/v2/silences", body)
    if response.status_code == 400:
        raise ApiError(400, f"Alertmanager refused the silence: {response.text[:200]}")
    if response.status_code != 200:
        raise ApiError(502, f"Alertmanager answered {response.status_code}")
    ident = str(response.json().get("silenceID", ""))
    await state.store.audit(
        AuditEntry(
            state.now(),
            who.username,
            "silenced",
            detail={
                "silence_id": ident,
                "via": "api",
                "token": who.token_name,
                # as sent to Alertmanager, control characters (NUL among them, which
                # PostgreSQL's jsonb cannot hold) replaced
                "matchers": [
                    f"{m.name}{'=' if m.isEqual else '!'}{'~' if m.isRegex else '='}"
                    f"{clean_text(m.value)!r}"
                    for m in wanted.matchers
                ],
                "comment": clean_text(wanted.comment),
                "ends_at": body["endsAt"],
            },
        )
    )
    return answer(SilenceCreated(ident), 201)


async def expire_silence(request: web.Request, who: Principal) -> web.StreamResponse:
    ident = request.match_info["id"]
    if not _SILENCE_ID.match(ident):
        raise ApiError(404, "no such silence")
    found = await _alertmanager(request, "GET", f"/api/v2/silence/{ident}")
    if found.status_code == 404:
        raise ApiError(404, "no such silence")
    if found.status_code != 200:
        raise ApiError(502, f"Alertmanager answered {found.status_code}")
    if not visible(who, _silence(found.json()).matchers):
        raise ApiError(403, f"silence {ident} is outside the token's organizations")
    response = await _alertmanager(request, "DELETE", f"/api/v2/silence/{ident}")
    if response.status_code == 404:
        raise ApiError(404, "no such silence")
    if response.status_code not in (200, 204):
        raise ApiError(502, f"Alertmanager answered {response.status_code}")
    state = api(request)
    await state.store.audit(
        AuditEntry(
            state.now(),
            who.username,
            "expired silence",
            detail={"silence_id": ident, "via": "api", "token": who.token_name},
        )
    )
    return web.Response(status=204)
