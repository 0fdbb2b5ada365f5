"""One alert's page, and acknowledge, silence, retry (the Now page is ``incidents.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from aiohttp import web

from bridge.storage import ALERT_TABLES
from bridge.storage.console import (
    Acknowledgement,
    AlertRow,
    AuditEntry,
    DeliveryRow,
)
from bridge.storage.reconcile import RESOLVED_SILENCED, Suppression
from console.alertmanagers import AlertmanagerError
from console.common import (
    ACK_CHOICES,
    ACK_LABELS,
    ATTEMPT_LABELS,
    BIGINT_MAX,
    PREFIX,
    SILENCE_CHOICES,
    Console,
    _audit,
    _back,
    _console,
    _forbidden,
    _form,
    _problem,
    _row_id,
    _stamp,
    _visitor,
    render,
    require,
)
from console.not_delivered import explain
from console.silence_forms import DROPPED_BY_DEFAULT
from console.silence_matchers import MatcherProblem, SilenceMatcher, check
from console.silences import alertmanagers


def _delivery_summary(
    alert: AlertRow, deliveries: list[DeliveryRow]
) -> list[tuple[str, str, DeliveryRow]]:
    """(channel, state, row) of the latest delivery per channel for this alert instance."""
    latest: dict[str, DeliveryRow] = {}
    for d in deliveries:
        if d.carries(alert.fingerprint, alert.starts_at):
            latest[d.channel] = d
    return [(c, d.display_state, d) for c, d in sorted(latest.items())]


def suppression_items(found: Suppression | None, *, resolved: bool) -> list[tuple[str, str]]:
    """(css class, text) of what Alertmanager said of an instance: its silences and inhibiting
    alerts while firing, or why the reconciler resolved it."""
    if found is None:
        return []
    if found.resolved_reason and found.resolved_at is not None:
        if not resolved:
            return []
        what = (
            "resolved while silenced"
            if found.resolved_reason == RESOLVED_SILENCED
            else "vanished from Alertmanager"
        )
        return [("reconciled", f"{what} at {_stamp(found.resolved_at)} UTC")]
    items = []
    for silence in found.silenced_by:
        ends = silence.get("ends_at")
        until = f", until {_stamp(datetime.fromisoformat(ends))} UTC" if ends else ""
        items.append(("silenced", f"silenced (silence {silence.get('id', '?')}{until})"))
    for inhibitor in found.inhibited_by:
        name = inhibitor.get("alertname") or inhibitor.get("fingerprint", "?")
        items.append(("inhibited", f"inhibited by {name}"))
    return items


async def decorate(
    console: Console, alerts: list[AlertRow], acks: dict | None = None
) -> tuple[dict, dict]:
    """Each alert's deliveries (latest per channel) and the acknowledgements (read unless
    given)."""
    deliveries = await console.store.deliveries([a.fingerprint for a in alerts])
    if acks is None:
        acks = await live_acknowledgements(console, [a.instance for a in alerts])
    per_alert = {(a.table, a.id): _delivery_summary(a, deliveries) for a in alerts}
    return per_alert, acks


async def live_acknowledgements(
    console: Console, instances: list[tuple[str, datetime]]
) -> dict[tuple[str, datetime], Acknowledgement]:
    """The acknowledgements of these instances that have not ended."""
    found = await console.store.acknowledgements(instances)
    now = console.now()
    return {k: a for k, a in found.items() if a.live(now)}


# -- one alert ------------------------------------------------------------------------------


async def _alert_or_404(request: web.Request) -> AlertRow:
    """The alert of the URL: 404 when there is none, 403 when it is another organization's
    (or of no organization) and the user is limited to some."""
    table = request.match_info["table"]
    ident = _row_id(request.match_info["id"])
    alert = await _console(request).store.alert(table, ident)
    user = _visitor(request).user
    if alert is None or user is None:
        raise web.HTTPNotFound(text="no such alert")
    if not user.sees(alert.organization_id):
        raise _forbidden(request, "This alert is outside your organizations.")
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
    acks = await live_acknowledgements(console, [alert.instance])
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
        timeline.append(audit_line(entry, f"by {entry.username}"))
    found = (await console.store.suppressions([alert.instance])).get(alert.instance)
    muted = suppression_items(found, resolved=alert.status == "resolved")
    if alert.status == "resolved" and alert.ends_at is not None:
        why = muted[0][1].rsplit(" at ", 1)[0] if muted else ""
        timeline.append((alert.ends_at, "resolved", why, ""))
    timeline.sort(key=lambda item: item[0])
    user = _visitor(request).user
    assert user is not None
    incident = None
    if alert.incident_id is not None:
        incident = await console.store.incident(alert.incident_id, user.organizations)
    skips = await console.store.skips(alert.fingerprint, alert.starts_at)
    prefs = await console.store.preference(alert.organization_id) if alert.organization_id else None
    channels = explain(alert, deliveries, skips, muted, prefs, _stamp)
    return render(
        request,
        "alert.html",
        alert=alert,
        incident=incident,
        ack=acks.get(alert.instance),
        deliveries=deliveries,
        timeline=timeline,
        silences=SILENCE_CHOICES,
        alertmanager=_alertmanager_link(console.host.alertmanager_url, alert),
        graph=alert.generator_url,
        notice=request.query.get("notice", ""),
        muted=muted,
        channels=channels,
        ack_choices={k: v for k, v in ACK_LABELS.items() if k != "policy"},
        reconcile=await console.store.reconcile_status(),
    )


def audit_line(entry: AuditEntry, who: str) -> tuple[datetime, str, str, str]:
    """An audit entry on a timeline: a note shows its text, other actions their details."""
    if entry.action == "note":
        return (entry.at, "note", str(entry.detail.get("text", "")), who)
    detail = ", ".join(f"{k}={v}" for k, v in sorted(entry.detail.items()) if v != "")
    return (entry.at, entry.action, who, detail)


async def acknowledge_as_user(
    request: web.Request, alert: AlertRow, note: str, chosen: str = "resolved"
) -> bool:
    """Acknowledge a firing alert as the user for ``chosen`` (an ``ACK_CHOICES`` key but
    policy), audited; False if it was already."""
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    length = ACK_CHOICES[chosen]
    ack = Acknowledgement(
        alert.fingerprint,
        alert.starts_at,
        alert.table,
        alert.severity,
        user.username,
        note,
        console.now(),
        console.now() + length if isinstance(length, timedelta) else None,
    )
    entry = _audit(request, "acknowledged", alert, note=note, until=chosen)
    return await console.store.acknowledge(ack, entry)


@require("responder")
async def acknowledge(request: web.Request) -> web.StreamResponse:
    alert = await _alert_or_404(request)
    form = await _form(request)
    note = form.get("note", "").strip()[:500]
    chosen = form.get("for", "resolved") or "resolved"
    if chosen not in ACK_CHOICES or chosen == "policy":
        choices = ", ".join(c for c in ACK_CHOICES if c != "policy")
        return _problem(request, 400, f"for must be one of {choices}")
    if alert.status != "firing":
        return _problem(request, 409, "This alert has resolved; there is nothing to acknowledge.")
    done = await acknowledge_as_user(request, alert, note, chosen)
    back = f"{PREFIX}/alerts/{alert.table}/{alert.id}"
    if form.get("from") == "now":
        back = f"{PREFIX}/"
    raise _back(back, "acknowledged" if done else "already acknowledged")


class SilenceRefused(Exception):
    """The silence was not made: its labels cannot be a silence (400) or Alertmanager refused
    it (502)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def silence_as_user(request: web.Request, alert: AlertRow, choice: str, comment: str) -> str:
    """A silence of the alert's labels but severity and widget_id (the silence form's
    defaults) for ``choice`` (a ``SILENCE_CHOICES`` key) in every Alertmanager, audited; its
    id. Raises ``SilenceRefused``."""
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    # Alertmanager keeps wall-clock time, whatever clock the bridge was given.
    now = datetime.now(UTC)
    comment = comment.strip()[:500] or f"silenced from the console by {user.username}"
    try:
        matchers = [
            SilenceMatcher.checked(name, value)
            for name, value in sorted(alert.labels.items())
            if name not in DROPPED_BY_DEFAULT
        ]
        check(matchers)
    except MatcherProblem as exc:
        raise SilenceRefused(400, f"{exc}; use the silence form") from None
    body = {
        "matchers": [m.to_alertmanager() for m in matchers],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(seconds=SILENCE_CHOICES[choice])).isoformat(),
        "createdBy": user.username,
        "comment": comment,
    }
    try:
        silence_id = (await alertmanagers(console).create(body)).id
    except AlertmanagerError as exc:
        raise SilenceRefused(502, str(exc)) from None
    await console.store.audit(
        _audit(request, "silenced", alert, duration=choice, silence_id=silence_id, comment=comment)
    )
    return silence_id


@require("responder")
async def silence(request: web.Request) -> web.StreamResponse:
    alert = await _alert_or_404(request)
    form = await _form(request)
    choice = form.get("duration", "")
    if choice not in SILENCE_CHOICES:
        return _problem(request, 400, f"duration must be one of {', '.join(SILENCE_CHOICES)}")
    try:
        await silence_as_user(request, alert, choice, form.get("comment", ""))
    except SilenceRefused as exc:
        return _problem(request, exc.status, str(exc))
    raise _back(f"{PREFIX}/alerts/{alert.table}/{alert.id}", f"silenced for {choice}")


@require("responder")
async def retry(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    delivery_id = _row_id(request.match_info["id"])
    form = await _form(request)
    table, alert_id = form.get("table", ""), form.get("alert", "")
    alert = None
    if table in ALERT_TABLES and alert_id.isascii() and alert_id.isdigit():
        alert = await console.store.alert(table, min(int(alert_id), BIGINT_MAX))
    user = _visitor(request).user
    assert user is not None
    if user.organizations is not None and (alert is None or not user.sees(alert.organization_id)):
        # limited to some organizations: only a delivery of an alert of theirs
        return _problem(request, 403, "That delivery is not one of your organizations'.")
    entry = _audit(request, "retried delivery", alert, delivery=delivery_id)
    if not await console.store.retry_dead(delivery_id, console.now(), entry):
        return _problem(request, 409, "That delivery is not dead-lettered (any more).")
    console.host.wake_delivery()
    target = f"{PREFIX}/alerts/{alert.table}/{alert.id}" if alert else f"{PREFIX}/"
    raise _back(target, f"delivery {delivery_id} queued again")
