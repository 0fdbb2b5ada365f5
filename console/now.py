"""The Now page: the incidents (each expandable to its alerts) and the alerts of no incident,
filtered by Alertmanager matchers (``?q=``; ``console/triage.py``), acknowledged, silenced and
inhibited alerts hidden unless asked for (``?all=1``, or an ``@state`` matcher), optionally
collapsed by alert name (``?group=name``); and the user's saved views.

A user limited to some organizations sees only incidents touching them and, within those,
only their organizations' alerts (the store's scope): a filter narrows that, never widens it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import cast

from aiohttp import web

from bridge.model import SEVERITY_RANK
from bridge.storage.console import AlertRow, ConsoleUser
from bridge.storage.console_now import FilterRefused, NowStore, SavedView
from console.alerts import decorate, live_acknowledgements, suppression_items
from console.common import PREFIX, _back, _console, _form, _problem, _row_id, _visitor, render
from console.incidents import RECENTLY, STATES, IncidentView, _view
from console.triage import (
    HIDDEN_STATES,
    FilterError,
    NowFilter,
    PageOptions,
    alert_states,
    by_name,
    parse_now_filter,
    severity_counts,
)

MAX_INCIDENTS = 200
MAX_ALERTS = 5000
MAX_MEMBERS = 100  # alert rows shown under one open incident or name
PRELOADED = 100  # alert rows of closed incidents or names the page carries
MAX_VIEW_NAME = 64


def _user(request: web.Request) -> ConsoleUser:
    user = _visitor(request).user
    assert user is not None
    return user


def now_store(request: web.Request) -> NowStore:
    # ConsoleQueries has both interfaces (as for the API's ApiStore)
    return cast(NowStore, _console(request).store)


def _order(view: IncidentView) -> tuple[int, int, float]:
    return (
        STATES.index(view.state),
        -SEVERITY_RANK.get(view.incident.severity, 0),
        -view.incident.last_alert_at.timestamp(),
    )


async def now_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _user(request)
    options = PageOptions.of(request.query)
    fragment = request.query.get("fragment") == "1"
    views = await now_store(request).saved_views(user.username)
    try:
        where = parse_now_filter(options.q)
        return await _listing(request, options, where, fragment, views)
    except (FilterError, FilterRefused) as exc:
        error = f"Filter not applied: {exc}"
    template = "now_live.html" if fragment else "now.html"
    return render(
        request,
        template,
        status=400,
        options=options,
        acts=user.role in ("responder", "admin"),
        error=error,
        views=views,
        notice=request.query.get("notice", ""),
        reconcile=await console.store.reconcile_status(),
    )


async def _listing(
    request: web.Request,
    options: PageOptions,
    where: NowFilter,
    fragment: bool,
    views: list[SavedView],
) -> web.StreamResponse:
    console = _console(request)
    user = _user(request)
    scope = user.organizations
    incidents = await console.store.incidents(console.now() - RECENTLY, scope, MAX_INCIDENTS)
    of_incident = {i.id: i for i in incidents}
    alerts = await now_store(request).now_alerts(list(of_incident), scope, where.labels, MAX_ALERTS)
    acks = await live_acknowledgements(console, [a.instance for a in alerts])
    found = await console.store.suppressions([a.instance for a in alerts])
    muted = {
        a.instance: items
        for a in alerts
        if a.status == "firing"
        and (items := suppression_items(found.get(a.instance), resolved=False))
    }
    hide = not options.show_all and not where.names_states
    # snoozed incidents are off the page until the snooze ends (?snoozed=1 or ?all=1 shows them)
    now = console.now()
    hide_snoozed = not (options.show_all or options.show_snoozed)
    snoozed: set[int] = set()
    shown: list[AlertRow] = []
    hidden: Counter[str] = Counter()
    for a in alerts:
        kinds = {kind for kind, _ in muted.get(a.instance, ())}
        incident = of_incident.get(a.incident_id or 0)
        if incident is not None and incident.snoozed(now):
            snoozed.add(incident.id)
            if hide_snoozed:
                continue
        states = alert_states(
            a,
            acknowledged=a.instance in acks
            or (incident is not None and incident.status == "acknowledged"),
            silenced="silenced" in kinds,
            inhibited="inhibited" in kinds,
        )
        if not where.admits(states):
            continue
        if hide and states & set(HIDDEN_STATES):
            hidden.update(s for s in HIDDEN_STATES if s in states)
            hidden["alerts"] += 1
            continue
        shown.append(a)
    members: dict[int, list[AlertRow]] = defaultdict(list)
    loose: list[AlertRow] = []
    for a in shown:
        if a.incident_id is None:
            loose.append(a)
        else:
            members[a.incident_id].append(a)
    silenced = set(muted)
    incident_views = sorted(
        (_view(i, members[i.id], user, silenced) for i in incidents if members[i.id]),
        key=_order,
    )
    groups: dict[tuple[str, str], list[AlertRow]] = defaultdict(list)
    for alert in sorted(loose, key=lambda a: a.starts_at, reverse=True):
        groups[(alert.severity, alert.category)].append(alert)
    ordered = sorted(groups.items(), key=lambda kv: (-SEVERITY_RANK[kv[0][0]], kv[0][1]))
    firing = [a for a in shown if a.status == "firing"]
    # The open incidents and name groups carry their alerts' rows (at most MAX_MEMBERS each),
    # and the closed ones too while the page holds at most PRELOADED rows (opened in place at
    # once); past that the script fetches the page again when one opens: 1,000 alerts stay
    # one screen.
    opened = {x for x in request.query.getall("open", [])[:100] if len(x) <= 200}
    names = by_name(shown) if options.by_name else []
    blocks: dict[str, list[AlertRow]] = (
        {g.alertname: g.alerts for g in names}
        if options.by_name
        else {str(v.incident.id): v.alerts for v in incident_views}
    )
    rendered = [a for _, alerts in ordered for a in alerts[:MAX_MEMBERS]]
    for key in opened & set(blocks):
        rendered += blocks[key][:MAX_MEMBERS]
    loaded = set(opened)
    for key, alerts in blocks.items():
        if key not in opened and len(rendered) + len(alerts) <= PRELOADED:
            rendered += alerts
            loaded.add(key)
    delivered, _ = await decorate(console, rendered, acks)
    return render(
        request,
        "now_live.html" if fragment else "now.html",
        notice=request.query.get("notice", ""),
        options=options,
        acts=user.role in ("responder", "admin"),
        error="",
        views=views,
        incidents=incident_views,
        states={s: sum(1 for v in incident_views if v.state == s) for s in STATES},
        opened=opened,
        loaded=loaded,
        snoozed=len(snoozed),
        groups=ordered,
        names=names,
        max_members=MAX_MEMBERS,
        titles={i.id: i.title for i in incidents},
        delivered=delivered,
        acks=acks,
        muted=muted,
        severities=severity_counts(firing),
        total=len(firing),
        hidden=hidden,
        reconcile=await console.store.reconcile_status(),
        reconciled=[
            r
            for r in await console.store.recently_reconciled(console.now() - RECENTLY, 20)
            if user.sees(r.organization_id)
        ],
    )


# -- saved views ----------------------------------------------------------------------------


async def save_view(request: web.Request) -> web.StreamResponse:
    """Save the filter under a name (the same name replaces it); any signed-in user, for
    themselves."""
    console = _console(request)
    form = await _form(request)
    name = " ".join(form.get("name", "").split())
    query = form.get("q", "").strip()
    if not name or len(name) > MAX_VIEW_NAME:
        return _problem(request, 400, f"A view needs a name of 1 to {MAX_VIEW_NAME} characters.")
    if not query:
        return _problem(request, 400, "A view needs a filter: type matchers first.")
    try:
        parse_now_filter(query)
    except FilterError as exc:
        return _problem(request, 400, f"The view's filter is not valid: {exc}")
    saved = await now_store(request).save_view(_user(request).username, name, query, console.now())
    if saved is None:
        return _problem(request, 409, "You have the most views one may keep; delete one first.")
    raise _back(PageOptions(query).path(PREFIX), f"view “{name}” saved")


async def delete_view(request: web.Request) -> web.StreamResponse:
    ident = _row_id(request.match_info["id"])
    if not await now_store(request).delete_view(_user(request).username, ident):
        raise web.HTTPNotFound(text="no such view")
    raise _back(f"{PREFIX}/", "view deleted")
