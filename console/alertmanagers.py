"""Silences in every configured Alertmanager (``ALERTMANAGER_URL``, comma-separated), API v2.

- **Listing** asks each Alertmanager for its silences and for the alerts it silences, at once;
  silences are merged by id (the members of an HA cluster share their silences by gossip, so
  one id is held by each of them; Alertmanagers that are not clustered each hold their own),
  each with the Alertmanagers that hold it and how many firing alerts it silences now
  (``status.silencedBy`` of their alerts, by fingerprint across them). An Alertmanager that
  does not answer is listed as unreachable with the reason; the others are still shown.
- **Creating** makes the silence once per cluster: the members that list each other among
  their peers (``/api/v2/status``) are one cluster, and one of them takes it (the next if it
  fails); an Alertmanager that is not clustered is a cluster of its own.
- **Editing** posts the silence with its id to an Alertmanager holding it: Alertmanager
  updates it in place when only the end or the comment changed (the start kept), else it
  expires it and creates a new one (a new id, returned).
- **Expiring** deletes it at an Alertmanager holding it (gossip tells the rest).

Names shown are the URLs without their user information (``host:port/path``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from console.silence_matchers import SilenceMatcher

TIMEOUT = 5.0
STATES = ("active", "pending", "expired")


class AlertmanagerError(Exception):
    """No Alertmanager took the request; the message says why (each one's reason)."""


class AlertmanagerRefused(AlertmanagerError):
    """An Alertmanager answered 400: the request itself is wrong (its message follows)."""


def display_name(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return (host + parts.path.rstrip("/")) or url


@dataclass(frozen=True)
class AmSilence:
    id: str
    state: str  # active | pending | expired
    matchers: tuple[SilenceMatcher, ...]
    starts_at: datetime
    ends_at: datetime
    updated_at: datetime | None
    created_by: str
    comment: str
    held_by: tuple[str, ...] = ()  # display names of the Alertmanagers holding it
    silencing: int = 0  # firing alerts it silences now, across the Alertmanagers


@dataclass
class Listing:
    silences: list[AmSilence]
    unreachable: dict[str, str] = field(default_factory=dict)  # name -> reason
    alertmanagers: tuple[str, ...] = ()


@dataclass
class Created:
    ids: dict[str, str]  # name of the Alertmanager that took it -> silence id
    failed: dict[str, str]  # name -> reason

    @property
    def id(self) -> str:
        return next(iter(self.ids.values()), "")


def _time(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_silence(raw: dict[str, Any]) -> AmSilence | None:
    starts, ends = _time(raw.get("startsAt")), _time(raw.get("endsAt"))
    ident = str(raw.get("id", ""))
    if not ident or starts is None or ends is None:
        return None
    state = str((raw.get("status") or {}).get("state", ""))
    return AmSilence(
        id=ident,
        state=state if state in STATES else "expired",
        matchers=tuple(
            SilenceMatcher.from_alertmanager(m)
            for m in raw.get("matchers") or []
            if isinstance(m, dict)
        ),
        starts_at=starts,
        ends_at=ends,
        updated_at=_time(raw.get("updatedAt")),
        created_by=str(raw.get("createdBy", "")),
        comment=str(raw.get("comment", "")),
    )


def _why(exc: Exception | httpx.Response) -> str:
    if isinstance(exc, httpx.Response):
        return f"answered HTTP {exc.status_code}"
    return f"unreachable ({type(exc).__name__})"


class Alertmanagers:
    def __init__(self, http: httpx.AsyncClient, urls: tuple[str, ...]) -> None:
        self.http = http
        self.urls = tuple(u.rstrip("/") for u in urls if u)
        self.names = {u: display_name(u) for u in self.urls}

    async def _call(self, method: str, url: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.request(method, url + path, timeout=TIMEOUT, **kwargs)

    async def _json(self, url: str, path: str, params: dict[str, str] | None = None) -> Any:
        response = await self._call("GET", url, path, params=params)
        if response.status_code != 200:
            raise AlertmanagerError(_why(response))
        return response.json()

    async def _one(self, url: str) -> tuple[list[dict[str, Any]], dict[str, set[str]]]:
        silences, alerts = await asyncio.gather(
            self._json(url, "/api/v2/silences"),
            self._json(
                url,
                "/api/v2/alerts",
                {"active": "false", "silenced": "true", "inhibited": "true"},
            ),
        )
        silencing: dict[str, set[str]] = {}
        for alert in alerts if isinstance(alerts, list) else ():
            for ident in (alert.get("status") or {}).get("silencedBy") or ():
                silencing.setdefault(str(ident), set()).add(str(alert.get("fingerprint", "")))
        return [s for s in silences if isinstance(s, dict)], silencing

    async def listing(self) -> Listing:
        answers = await asyncio.gather(*(self._one(u) for u in self.urls), return_exceptions=True)
        found: dict[str, AmSilence] = {}
        holders: dict[str, list[str]] = {}
        fingerprints: dict[str, set[str]] = {}
        unreachable: dict[str, str] = {}
        for url, result in zip(self.urls, answers, strict=True):
            name = self.names[url]
            if isinstance(result, BaseException):
                if not isinstance(result, (httpx.HTTPError, AlertmanagerError, ValueError)):
                    raise result
                unreachable[name] = (
                    str(result) if isinstance(result, AlertmanagerError) else _why(result)
                )
                continue
            raw_silences, silencing = result
            for raw in raw_silences:
                silence = parse_silence(raw)
                if silence is None:
                    continue
                holders.setdefault(silence.id, []).append(name)
                known = found.get(silence.id)
                # members of a cluster may differ for a moment: the latest update wins
                if known is None or (silence.updated_at or silence.starts_at) > (
                    known.updated_at or known.starts_at
                ):
                    found[silence.id] = silence
            for ident, prints in silencing.items():
                fingerprints.setdefault(ident, set()).update(prints)
        silences = [
            AmSilence(
                **{
                    **s.__dict__,
                    "held_by": tuple(holders[s.id]),
                    "silencing": len(fingerprints.get(s.id, ())) if s.state == "active" else 0,
                }
            )
            for s in found.values()
        ]
        return Listing(silences, unreachable, tuple(self.names.values()))

    async def find(self, ident: str) -> AmSilence | None:
        """The silence with this id, with the Alertmanagers holding it, or None when none
        does; AlertmanagerError when none answered."""

        async def one(url: str) -> AmSilence | None:
            response = await self._call("GET", url, f"/api/v2/silence/{ident}")
            if response.status_code == 404:
                return None
            if response.status_code != 200:
                raise AlertmanagerError(_why(response))
            return parse_silence(response.json())

        answers = await asyncio.gather(*(one(u) for u in self.urls), return_exceptions=True)
        best: AmSilence | None = None
        held: list[str] = []
        errors = []
        for url, result in zip(self.urls, answers, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, (httpx.HTTPError, AlertmanagerError, ValueError)):
                    raise result
                errors.append(f"{self.names[url]}: {_reason(result)}")
                continue
            if result is not None:
                held.append(self.names[url])
                if best is None or (result.updated_at or result.starts_at) > (
                    best.updated_at or best.starts_at
                ):
                    best = result
        if best is None:
            if errors and len(errors) == len(self.urls):
                raise AlertmanagerError("; ".join(errors))
            return None
        return AmSilence(**{**best.__dict__, "held_by": tuple(held)})

    async def _clusters(self) -> list[list[str]]:
        """The configured Alertmanagers grouped by cluster (from each one's peers)."""

        async def peers(url: str) -> tuple[str, set[str]]:
            cluster = (await self._json(url, "/api/v2/status")).get("cluster") or {}
            names = {str(p.get("name", "")) for p in cluster.get("peers") or ()}
            return str(cluster.get("name", "")), names - {""}

        answers = await asyncio.gather(*(peers(u) for u in self.urls), return_exceptions=True)
        groups: list[list[str]] = []
        known: list[tuple[str, set[str]]] = []
        for url, result in zip(self.urls, answers, strict=True):
            me, others = result if isinstance(result, tuple) else ("", set())
            for group, (name, members) in zip(groups, known, strict=True):
                if me and (me in members or name in others):
                    group.append(url)
                    members.update(others | {me})
                    break
            else:
                groups.append([url])
                known.append((me, set(others) | ({me} if me else set())))
        return groups

    async def create(self, body: dict[str, Any]) -> Created:
        """The silence made in every cluster; AlertmanagerRefused when one refuses it as
        wrong (400), AlertmanagerError when none took it."""
        ids: dict[str, str] = {}
        failed: dict[str, str] = {}
        for group in await self._clusters():
            for url in group:
                try:
                    ids[self.names[url]] = await self._post(url, body)
                    break
                except AlertmanagerRefused:
                    raise
                except (httpx.HTTPError, AlertmanagerError, ValueError) as exc:
                    failed[self.names[url]] = _reason(exc)
        if not ids:
            raise AlertmanagerError(
                "no Alertmanager took the silence: "
                + "; ".join(f"{k}: {v}" for k, v in failed.items())
            )
        return Created(ids, failed)

    async def _post(self, url: str, body: dict[str, Any]) -> str:
        response = await self._call("POST", url, "/api/v2/silences", json=body)
        if response.status_code == 400:
            raise AlertmanagerRefused(f"Alertmanager refused the silence: {response.text[:200]}")
        if response.status_code == 404:
            raise AlertmanagerError("no such silence (any more)")
        if response.status_code != 200:
            raise AlertmanagerError(_why(response))
        return str(response.json().get("silenceID", ""))

    def _holders(self, silence: AmSilence) -> list[str]:
        by_name = {self.names[u]: u for u in self.urls}
        return [by_name[n] for n in silence.held_by if n in by_name] or list(by_name.values())

    async def replace(self, silence: AmSilence, body: dict[str, Any]) -> str:
        """``body`` (without id) replaces ``silence``: the id it has now (the same, or a new
        one when Alertmanager could not update it in place)."""
        errors = []
        for url in self._holders(silence):
            try:
                return await self._post(url, {**body, "id": silence.id})
            except AlertmanagerRefused:
                raise
            except (httpx.HTTPError, AlertmanagerError, ValueError) as exc:
                errors.append(f"{self.names[url]}: {_reason(exc)}")
        raise AlertmanagerError("; ".join(errors))

    async def expire(self, silence: AmSilence) -> None:
        errors = []
        for url in self._holders(silence):
            try:
                response = await self._call("DELETE", url, f"/api/v2/silence/{silence.id}")
            except httpx.HTTPError as exc:
                errors.append(f"{self.names[url]}: {_reason(exc)}")
                continue
            if response.status_code in (200, 204):
                return
            errors.append(f"{self.names[url]}: {_why(response)}")
        raise AlertmanagerError("; ".join(errors))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, httpx.HTTPError):
        return f"unreachable ({type(exc).__name__})"
    if isinstance(exc, ValueError):
        return "answered something that is not JSON"
    return str(exc)
