"""The console's pages and actions, mounted under ``/console/`` by ``bridge.app.create_app``.

Every page needs a session (viewer or above); acknowledge, silence and retry need responder;
settings changes and users need admin. Every POST carries the session's CSRF token, and every
action writes an audit entry in the same transaction as its effect.
"""

from __future__ import annotations

import csv
import io
import logging
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jinja2
from aiohttp import web

from bridge.console import upstream
from bridge.console.auth import (
    COOKIE,
    Session,
    Sessions,
    allowed,
    console_secret,
    hash_password,
    valid_username,
    verify_password,
)
from bridge.console.forms import (
    TUNABLE,
    FormError,
    parse_configuration,
    parse_preference,
    valid_organization,
)
from bridge.console.whatif import what_if
from bridge.model import CATEGORIES, SEVERITIES, SEVERITY_RANK
from bridge.storage import ALERT_TABLES, StorageUnavailable
from bridge.storage.console import (
    ROLES,
    STATUSES,
    Acknowledgement,
    AlertRow,
    AuditEntry,
    ConsoleUser,
    Cursor,
    DeliveryRow,
    HistoryFilter,
)

log = logging.getLogger(__name__)

PREFIX = "/console"
PAGE_SIZE = 100
CSV_MAX_ROWS = 1_000_000
SILENCE_CHOICES = {"30m": 1800, "1h": 3600, "4h": 14400, "12h": 43200, "1d": 86400, "7d": 604800}
SELF_RESOLVE_SECONDS = 600.0
ATTEMPT_LABELS = {
    "sent": "sent",
    "retry": "failed, will retry",
    "dead": "gave up",
    "requeued": "queued again",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Visitor:
    session: Session
    user: ConsoleUser | None = None
    set_cookie: bool = False


@dataclass
class Console:
    """What the console's handlers share; one per bridge application."""

    bridge: Any  # bridge.app.Bridge (not imported: app imports this module)
    secret: str = ""
    session_seconds: float = 12 * 3600.0
    http: httpx.AsyncClient | None = None
    sessions: Sessions | None = None
    env: jinja2.Environment = field(
        default_factory=lambda: jinja2.Environment(
            loader=jinja2.PackageLoader("bridge.console", "templates"),
            autoescape=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
    )

    def __post_init__(self) -> None:
        self.env.filters["safe_url"] = safe_url

    @property
    def store(self):  # the storage layer's console queries
        return self.bridge.storage.console()

    def now(self) -> datetime:
        return self.bridge.clock()


CONSOLE = web.AppKey("console", Console)
VISITOR: Any = (
    web.RequestKey("passiton_console_visitor", Visitor)
    if hasattr(web, "RequestKey")
    else "passiton_console_visitor"
)


def safe_url(value: object) -> str:
    """Only http(s) links reach an href (annotations come from outside)."""
    text = str(value or "")
    return text if text.lower().startswith(("http://", "https://")) else ""


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return ""
    seconds = max(int((now - then).total_seconds()), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def _stamp(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _console(request: web.Request) -> Console:
    return request.app[CONSOLE]


def _visitor(request: web.Request) -> Visitor:
    return request[VISITOR]


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    console = _console(request)
    visitor = _visitor(request)
    assert console.sessions is not None
    body = console.env.get_template(template).render(
        user=visitor.user,
        csrf=console.sessions.csrf_token(visitor.session),
        prefix=PREFIX,
        now=console.now(),
        age=_age,
        stamp=_stamp,
        duration=_duration,
        path=request.path,
        query=request.query,
        **context,
    )
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def _problem(request: web.Request, status: int, message: str) -> web.Response:
    return render(request, "problem.html", status=status, message=message)


@web.middleware
async def console_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Session, login requirement, CSRF, and the security headers of every console page."""
    if not request.path.startswith(PREFIX):
        return await handler(request)
    console = _console(request)
    assert console.sessions is not None
    session = console.sessions.load(request.cookies.get(COOKIE))
    visitor = Visitor(session or Sessions.anonymous(), set_cookie=session is None)
    if session is not None and session.username:
        try:
            user = await console.store.get_user(session.username)
        except StorageUnavailable:
            return web.Response(status=503, text="database unavailable\n")
        if user is not None and user.session_epoch == session.epoch:
            visitor.user = user
    request[VISITOR] = visitor
    public = request.path in (f"{PREFIX}/login", f"{PREFIX}/static/console.css") or (
        request.path.startswith(f"{PREFIX}/static/")
    )
    if request.method == "POST":
        form = await request.post()
        token = form.get("csrf", "")
        if not isinstance(token, str) or not console.sessions.csrf_ok(visitor.session, token):
            response: web.StreamResponse = _problem(
                request, 403, "The form's security token did not match (CSRF). Reload and retry."
            )
            return _finish(console, visitor, response)
    if visitor.user is None and not public:
        if request.method == "GET" and "text/csv" not in request.headers.get("Accept", ""):
            target = request.path_qs
            response = web.HTTPSeeOther(f"{PREFIX}/login?{urlencode({'next': target})}")
        else:
            response = web.Response(status=401, text="log in first\n")
        return _finish(console, visitor, response)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    except StorageUnavailable:
        response = _problem(request, 503, "The alert database is unavailable; try again.")
    return _finish(console, visitor, response)


def _finish(console: Console, visitor: Visitor, response: web.StreamResponse) -> web.StreamResponse:
    assert console.sessions is not None
    if visitor.set_cookie and not response.prepared:
        response.set_cookie(
            COOKIE,
            console.sessions.dump(visitor.session),
            max_age=int(console.session_seconds),
            path=f"{PREFIX}/",
            httponly=True,
            samesite="Lax",
        )
    if not response.prepared:
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline';"
            " frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def require(role: str) -> Callable[[Handler], Handler]:
    def wrap(handler: Handler) -> Handler:
        async def checked(request: web.Request) -> web.StreamResponse:
            user = _visitor(request).user
            if user is None or not allowed(user.role, role):
                return _problem(request, 403, f"This needs the {role} role.")
            return await handler(request)

        return checked

    return wrap


def _audit(request: web.Request, action: str, alert: AlertRow | None = None, **detail: Any):
    user = _visitor(request).user
    assert user is not None
    return AuditEntry(
        _console(request).now(),
        user.username,
        action,
        alert.fingerprint if alert else None,
        alert.starts_at if alert else None,
        detail,
    )


async def _form(request: web.Request) -> dict[str, str]:
    return {k: v for k, v in (await request.post()).items() if isinstance(v, str)}


def _back(location: str, notice: str = "") -> web.HTTPSeeOther:
    if notice:
        location += ("&" if "?" in location else "?") + urlencode({"notice": notice})
    return web.HTTPSeeOther(location)


# -- login ----------------------------------------------------------------------------------


async def login_page(request: web.Request) -> web.StreamResponse:
    return render(request, "login.html", next=_safe_next(request.query.get("next", "")))


def _safe_next(target: str) -> str:
    # Only a path of this console; never another site (open redirect).
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


async def login(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    username, password = form.get("username", "").strip(), form.get("password", "")
    user = await console.store.get_user(username) if valid_username(username) else None
    if not verify_password(user.password_hash if user else "", password) or user is None:
        log.info("console login refused", extra={"username": username[:64]})
        return render(
            request,
            "login.html",
            status=401,
            error="Unknown user or wrong password.",
            next=_safe_next(form.get("next", "")),
        )
    visitor = _visitor(request)
    visitor.session = Session(secrets.token_urlsafe(16), user.username, user.session_epoch)
    visitor.set_cookie = True
    await console.store.audit(
        AuditEntry(console.now(), user.username, "login", detail={"ip": request.remote or ""})
    )
    return web.HTTPSeeOther(_safe_next(form.get("next", "")))


async def logout(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    visitor = _visitor(request)
    assert visitor.user is not None
    await console.store.end_sessions(visitor.user.username, _audit(request, "logout"))
    visitor.session = Sessions.anonymous()
    visitor.set_cookie = True
    return web.HTTPSeeOther(f"{PREFIX}/login")


# -- now ------------------------------------------------------------------------------------


def _delivery_summary(
    alert: AlertRow, deliveries: list[DeliveryRow]
) -> list[tuple[str, str, DeliveryRow]]:
    """(channel, state, row) of the latest delivery per channel for this alert instance."""
    latest: dict[str, DeliveryRow] = {}
    for d in deliveries:
        if d.carries(alert.fingerprint, alert.starts_at):
            latest[d.channel] = d
    return [(c, d.display_state, d) for c, d in sorted(latest.items())]


async def _decorate(console: Console, alerts: list[AlertRow]) -> tuple[dict, dict]:
    deliveries = await console.store.deliveries([a.fingerprint for a in alerts])
    acks = await console.store.acknowledgements([a.instance for a in alerts])
    per_alert = {(a.table, a.id): _delivery_summary(a, deliveries) for a in alerts}
    return per_alert, acks


async def now_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    alerts = await console.store.firing(500)
    delivered, acks = await _decorate(console, alerts)
    groups: dict[tuple[str, str], list[AlertRow]] = defaultdict(list)
    for alert in alerts:
        groups[(alert.severity, alert.category)].append(alert)
    ordered = sorted(groups.items(), key=lambda kv: (-SEVERITY_RANK[kv[0][0]], kv[0][1]))
    template = "now_live.html" if request.query.get("fragment") == "1" else "now.html"
    return render(
        request,
        template,
        groups=ordered,
        delivered=delivered,
        acks=acks,
        total=len(alerts),
        acked=sum(1 for a in alerts if a.instance in acks),
    )


# -- one alert ------------------------------------------------------------------------------


async def _alert_or_404(request: web.Request) -> AlertRow:
    table = request.match_info["table"]
    try:
        ident = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    alert = await _console(request).store.alert(table, ident)
    if alert is None:
        raise web.HTTPNotFound(text="no such alert")
    return alert


def _alertmanager_link(base: str, alert: AlertRow) -> str:
    matchers = ",".join(
        f'{k}="{v}"'
        for k, v in sorted(alert.labels.items())
        if k in ("alertname", "organization_id")
    )
    return f"{base.rstrip('/')}/#/alerts?filter={quote('{' + matchers + '}')}"


async def alert_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    alert = await _alert_or_404(request)
    deliveries = [
        d
        for d in await console.store.deliveries([alert.fingerprint])
        if d.carries(alert.fingerprint, alert.starts_at)
    ]
    acks = await console.store.acknowledgements([alert.instance])
    audit = await console.store.audit_for(alert.fingerprint, alert.starts_at)
    timeline: list[tuple[datetime, str, str, str]] = [
        (alert.starts_at, "fired", f"{alert.severity} — {alert.summary}", ""),
        (alert.received_at, "received", "first notification reached the bridge", ""),
    ]
    channel_of = {d.id: d.channel for d in deliveries}
    for d in deliveries:
        what = f"{d.channel}: {d.message_status}{' (' + d.notice + ')' if d.notice else ''}"
        timeline.append((d.created_at, "queued", what, ""))
    for attempt in await console.store.attempts(list(channel_of)):
        label = ATTEMPT_LABELS.get(attempt.result, attempt.result)
        what = f"{channel_of[attempt.delivery_id]}, attempt {attempt.attempt}"
        timeline.append((attempt.at, label, what, attempt.error or ""))
    for entry in audit:
        detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()))
        timeline.append((entry.at, entry.action, f"by {entry.username}", detail))
    if alert.status == "resolved" and alert.ends_at is not None:
        timeline.append((alert.ends_at, "resolved", "", ""))
    timeline.sort(key=lambda item: item[0])
    return render(
        request,
        "alert.html",
        alert=alert,
        ack=acks.get(alert.instance),
        deliveries=deliveries,
        timeline=timeline,
        silences=SILENCE_CHOICES,
        alertmanager=_alertmanager_link(console.bridge.config.alertmanager_url, alert),
        graph=alert.generator_url,
        notice=request.query.get("notice", ""),
    )


@require("responder")
async def acknowledge(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    alert = await _alert_or_404(request)
    note = (await _form(request)).get("note", "").strip()[:500]
    user = _visitor(request).user
    assert user is not None
    if alert.status != "firing":
        return _problem(request, 409, "This alert has resolved; there is nothing to acknowledge.")
    ack = Acknowledgement(
        alert.fingerprint,
        alert.starts_at,
        alert.table,
        alert.severity,
        user.username,
        note,
        console.now(),
    )
    done = await console.store.acknowledge(ack, _audit(request, "acknowledged", alert, note=note))
    back = f"{PREFIX}/alerts/{alert.table}/{alert.id}"
    if (await _form(request)).get("from") == "now":
        back = f"{PREFIX}/"
    return _back(back, "acknowledged" if done else "already acknowledged")


@require("responder")
async def silence(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    alert = await _alert_or_404(request)
    form = await _form(request)
    choice = form.get("duration", "")
    if choice not in SILENCE_CHOICES:
        return _problem(request, 400, f"duration must be one of {', '.join(SILENCE_CHOICES)}")
    user = _visitor(request).user
    assert user is not None
    assert console.http is not None
    # Alertmanager keeps wall-clock time, whatever clock the bridge was given.
    now = datetime.now(UTC)
    comment = (
        form.get("comment", "").strip()[:500] or f"silenced from the console by {user.username}"
    )
    try:
        silence_id = await upstream.create_silence(
            console.http,
            console.bridge.config.alertmanager_url,
            alert.labels,
            now,
            now + timedelta(seconds=SILENCE_CHOICES[choice]),
            user.username,
            comment,
        )
    except upstream.UpstreamError as exc:
        return _problem(request, 502, str(exc))
    await console.store.audit(
        _audit(request, "silenced", alert, duration=choice, silence_id=silence_id, comment=comment)
    )
    return _back(f"{PREFIX}/alerts/{alert.table}/{alert.id}", f"silenced for {choice}")


@require("responder")
async def retry(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    try:
        delivery_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    form = await _form(request)
    table, alert_id = form.get("table", ""), form.get("alert", "")
    alert = None
    if table in ALERT_TABLES and alert_id.isdigit():
        alert = await console.store.alert(table, int(alert_id))
    entry = _audit(request, "retried delivery", alert, delivery=delivery_id)
    if not await console.store.retry_dead(delivery_id, console.now(), entry):
        return _problem(request, 409, "That delivery is not dead-lettered (any more).")
    console.bridge.delivery.wake()
    target = f"{PREFIX}/alerts/{alert.table}/{alert.id}" if alert else f"{PREFIX}/"
    return _back(target, f"delivery {delivery_id} queued again")


# -- history --------------------------------------------------------------------------------


def _parse_time(value: str, name: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"{name}: expected a date like 2026-03-01 or 2026-03-01T09:00"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _history_filter(query: Any) -> HistoryFilter:
    categories = tuple(c for c in query.getall("category", []) if c)
    bad = [c for c in categories if c not in CATEGORIES]
    severity, status = query.get("severity", ""), query.get("status", "")
    if bad:
        raise web.HTTPBadRequest(text=f"unknown category {bad[0][:40]!r}")
    if severity and severity not in SEVERITIES:
        raise web.HTTPBadRequest(text=f"severity must be one of {', '.join(SEVERITIES)}")
    if status and status not in STATUSES:
        raise web.HTTPBadRequest(text="status must be firing or resolved")
    return HistoryFilter(
        categories=categories,
        severity=severity,
        organization_id=query.get("org", "").strip()[:128],
        alertname=query.get("alertname", "").strip()[:128],
        status=status,
        since=_parse_time(query.get("since", ""), "since"),
        until=_parse_time(query.get("until", ""), "until"),
        text=query.get("q", "").strip()[:200],
    )


async def history_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    where = _history_filter(request.query)
    cursor = None
    if request.query.get("after"):
        try:
            cursor = Cursor.decode(request.query["after"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    if request.query.get("format") == "csv":
        return await _history_csv(request, where)
    rows = await console.store.history(where, cursor, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    acks = await console.store.acknowledgements([a.instance for a in rows])
    params = [(k, v) for k, v in request.query.items() if k not in ("after", "notice")]
    next_url = ""
    if more:
        last = rows[-1]
        next_cursor = Cursor(last.starts_at, last.table, last.id).encode()
        next_url = f"?{urlencode([*params, ('after', next_cursor)])}"
    csv_url = f"?{urlencode([*params, ('format', 'csv')])}"
    return render(
        request,
        "history.html",
        rows=rows,
        acks=acks,
        next_url=next_url,
        csv_url=csv_url,
        first_url=f"?{urlencode(params)}" if cursor else "",
        where=where,
        categories=CATEGORIES,
        severities=SEVERITIES,
        statuses=STATUSES,
    )


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _history_csv(request: web.Request, where: HistoryFilter) -> web.StreamResponse:
    console = _console(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="passiton-alerts.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "starts_at",
            "ends_at",
            "status",
            "severity",
            "category",
            "alertname",
            "organization_id",
            "summary",
            "fingerprint",
            "acknowledged_by",
        ]
    )
    cursor: Cursor | None = None
    written = 0
    while written < CSV_MAX_ROWS:
        rows = await console.store.history(where, cursor, 1000)
        if not rows:
            break
        acks = await console.store.acknowledgements([a.instance for a in rows])
        for a in rows:
            ack = acks.get(a.instance)
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        a.starts_at.isoformat(),
                        a.ends_at.isoformat() if a.ends_at else "",
                        a.status,
                        a.severity,
                        a.category,
                        a.alertname,
                        a.organization_id or "",
                        a.summary,
                        a.fingerprint,
                        ack.username if ack else "",
                    )
                ]
            )
        written += len(rows)
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        last = rows[-1]
        cursor = Cursor(last.starts_at, last.table, last.id)
    await console.store.audit(_audit(request, "exported history", rows=written))
    await response.write_eof()
    return response


# -- review ---------------------------------------------------------------------------------


def _bars(points: list[tuple[str, int]], width: int = 360, height: int = 120) -> dict[str, Any]:
    """Geometry of a simple bar chart, drawn as inline SVG by the template."""
    top = max((v for _, v in points), default=0) or 1
    step = width / max(len(points), 1)
    bars = [
        {
            "x": round(i * step, 1),
            "w": round(min(max(step - 2, 1), 48), 1),
            "h": round(v / top * (height - 14), 1),
            "y": round(height - v / top * (height - 14), 1),
            "label": label,
            "value": v,
        }
        for i, (label, v) in enumerate(points)
    ]
    return {"bars": bars, "width": width, "height": height, "top": top}


async def review_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    try:
        days = int(request.query.get("days", "30"))
    except ValueError:
        raise web.HTTPBadRequest(text="days must be a whole number") from None
    if not 1 <= days <= 366:
        raise web.HTTPBadRequest(text="days must be within 1..366")
    until = console.now()
    since = until - timedelta(days=days)
    review = await console.store.review(since, until, SELF_RESOLVE_SECONDS, 200)
    whatif = None
    if request.query.get("whatif_alert"):
        assert console.http is not None
        whatif = await what_if(
            console.http,
            console.bridge.config.prometheus_url,
            console.store,
            request.query.get("whatif_alert", ""),
            request.query.get("whatif_org", "").strip(),
            request.query.get("whatif_threshold", ""),
            since,
            until,
        )
    return render(
        request,
        "review.html",
        review=review,
        days=days,
        since=since,
        until=until,
        daily=_bars(review.daily),
        noisiest=_bars(review.noisiest),
        self_resolve=SELF_RESOLVE_SECONDS,
        tunable=TUNABLE,
        whatif=whatif,
    )


# -- settings -------------------------------------------------------------------------------


async def _threshold_readback(console: Console, organization_id: str) -> dict[str, Any]:
    """What the bridge exports now, and what Prometheus last scraped."""
    exported = {
        name: value
        for org, name, value in console.bridge.router.thresholds()
        if org == organization_id
    }
    scraped: dict[str, float] | str = {}
    assert console.http is not None
    try:
        result = await upstream.instant(
            console.http,
            console.bridge.config.prometheus_url,
            f'passiton_alert_threshold{{organization_id="{organization_id}"}}',
        )
        scraped = {r["metric"].get("alertname", ""): float(r["value"][1]) for r in result}
    except upstream.UpstreamError as exc:
        scraped = str(exc)
    return {"exported": exported, "scraped": scraped}


async def settings_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    organizations = await console.store.organizations(console.now() - timedelta(days=90))
    org = request.query.get("org", "").strip()
    context: dict[str, Any] = {"organizations": organizations, "org": org}
    if org:
        try:
            org = valid_organization(org)
        except FormError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        context.update(
            preference=await console.store.preference(org),
            configurations={c.alertname: c for c in await console.store.configurations(org)},
            readback=await _threshold_readback(console, org),
        )
    return render(
        request,
        "settings.html",
        tunable=TUNABLE,
        severities=SEVERITIES,
        notice=request.query.get("notice", ""),
        problems=[],
        **context,
    )


@require("admin")
async def save_preferences(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    try:
        org = valid_organization(form.get("org", ""))
        row = parse_preference(org, form)
    except FormError as exc:
        return render(
            request, "problem.html", status=400, message="Not saved.", problems=exc.problems
        )
    entry = _audit(
        request,
        "changed preferences",
        organization_id=org,
        channels=row.channels,
        min_severity=row.min_severity,
        timezone=row.timezone,
    )
    await console.store.save_preference(row, console.now(), entry)
    await console.bridge.router.refresh(console.bridge.storage)
    return _back(f"{PREFIX}/settings?{urlencode({'org': org})}", "preferences saved")


@require("admin")
async def save_threshold(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    try:
        org = valid_organization(form.get("org", ""))
        if form.get("delete") == "1":
            alertname = form.get("alertname", "")
            if alertname not in TUNABLE:
                raise FormError([f"alert name must be one of {', '.join(TUNABLE)}"])
            entry = _audit(request, "removed threshold", organization_id=org, alertname=alertname)
            await console.store.delete_configuration(org, alertname, entry)
            notice = f"{alertname}: back to the default"
        else:
            row = parse_configuration(org, form)
            entry = _audit(
                request,
                "changed threshold",
                organization_id=org,
                alertname=row.alertname,
                threshold=row.threshold,
                enabled=row.enabled,
            )
            await console.store.save_configuration(row, console.now(), entry)
            notice = f"{row.alertname} saved"
    except FormError as exc:
        return render(
            request, "problem.html", status=400, message="Not saved.", problems=exc.problems
        )
    await console.bridge.router.refresh(console.bridge.storage)
    return _back(f"{PREFIX}/settings?{urlencode({'org': org})}", notice)


# -- users ----------------------------------------------------------------------------------


@require("admin")
async def users_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    return render(
        request,
        "users.html",
        users=await console.store.list_users(),
        audit=await console.store.recent_audit(100),
        roles=ROLES,
        notice=request.query.get("notice", ""),
    )


@require("admin")
async def save_user(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    form = await _form(request)
    username, role, password = (
        form.get("username", "").strip(),
        form.get("role", ""),
        form.get("password", ""),
    )
    problems = []
    if not valid_username(username):
        problems.append("user name: 1-64 letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        problems.append(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 12:
        problems.append("password: at least 12 characters")
    if problems:
        return render(request, "problem.html", status=400, message="Not saved.", problems=problems)
    await console.store.upsert_user(username, hash_password(password), role, console.now())
    await console.store.audit(_audit(request, "saved user", username=username, role=role))
    return _back(f"{PREFIX}/users", f"{username} saved as {role}")


# -- wiring ---------------------------------------------------------------------------------


def add_console(app: web.Application, bridge: Any, *, secret: str, session_seconds: float) -> None:
    """Mount the console under /console/ on the bridge's application."""
    console = Console(bridge, secret=secret, session_seconds=session_seconds)
    app[CONSOLE] = console
    app.middlewares.append(console_middleware)
    r = app.router
    r.add_get(PREFIX, lambda _: web.HTTPFound(f"{PREFIX}/"))
    r.add_get(f"{PREFIX}/", now_page)
    r.add_get(f"{PREFIX}/login", login_page)
    r.add_post(f"{PREFIX}/login", login)
    r.add_post(f"{PREFIX}/logout", logout)
    r.add_get(f"{PREFIX}/alerts/{{table}}/{{id}}", alert_page)
    r.add_post(f"{PREFIX}/alerts/{{table}}/{{id}}/acknowledge", acknowledge)
    r.add_post(f"{PREFIX}/alerts/{{table}}/{{id}}/silence", silence)
    r.add_post(f"{PREFIX}/deliveries/{{id}}/retry", retry)
    r.add_get(f"{PREFIX}/history", history_page)
    r.add_get(f"{PREFIX}/review", review_page)
    r.add_get(f"{PREFIX}/settings", settings_page)
    r.add_post(f"{PREFIX}/settings/preferences", save_preferences)
    r.add_post(f"{PREFIX}/settings/thresholds", save_threshold)
    r.add_get(f"{PREFIX}/users", users_page)
    r.add_post(f"{PREFIX}/users", save_user)
    r.add_static(f"{PREFIX}/static/", _static_dir(), append_version=True)

    async def lifecycle(_: web.Application):
        console.http = httpx.AsyncClient()
        yield
        await console.http.aclose()

    async def keys(_: web.Application) -> None:
        try:
            key = await console_secret(bridge.storage, secret, bridge.clock())
        except StorageUnavailable:
            # Started while the database is down: a process-local key until it is back.
            log.warning("console key not loaded from the database; sessions are per process")
            key = secrets.token_urlsafe(48)
        console.sessions = Sessions(key, session_seconds)

    app.cleanup_ctx.append(lifecycle)
    app.on_startup.append(keys)


def _static_dir() -> Path:
    return Path(__file__).parent / "static"
