"""Incidents: one problem, one page (issue 19). The grouping as a pure function, then whole
bridges: twelve organizations' widget errors and the platform outage, a database outage seen
as database, API and payment alerts, unrelated alerts an hour apart."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bridge.app import BRIDGE, create_app
from bridge.channels.pagerduty import PagerDutyNotifier, incident_dedup_key
from bridge.incidents import (
    Incident,
    IncidentBook,
    Member,
    choose_incident,
    choose_survivor,
    related_incidents,
)
from bridge.model import Alert
from bridge.topology import load_topology
from tests.bridge.support import (
    AUTH,
    T0,
    BridgeClient,
    Clock,
    am_alert,
    body,
    make_config,
    notifiers,
    payload,
)

TOPOLOGY = load_topology()


def incident(id_: int, *names: str, last: int = 0, status: str = "firing") -> Incident:
    members = [
        Member(f"fp{id_}{i}", T0, n, f"org-{i}", "high", "firing", T0) for i, n in enumerate(names)
    ]
    at = T0 + timedelta(minutes=last)
    return Incident(id_, T0, at, status=status, members=members)


def alert(name: str, fp: str, org: str | None = None, severity: str = "high", status="firing"):
    labels = {"alertname": name, "severity": severity, "category": "system"}
    if org:
        labels["organization_id"] = org
    return Alert(fp, status, labels, {}, T0, None)


def test_the_same_alert_across_organizations_joins():
    open_ = [incident(1, "WidgetLoadErrorRatioHigh")]
    now = T0 + timedelta(minutes=5)
    assert choose_incident("WidgetLoadErrorRatioHigh", open_, TOPOLOGY, now) is open_[0]


@pytest.mark.parametrize(
    ("member", "arriving"),
    [
        ("WidgetLoadErrorRatioHigh", "WidgetPlatformOutage"),  # the cause after its effect
        ("DatabaseUnreachable", "PaymentFailureRatioHigh"),  # an effect after its cause
        ("WidgetPlatformOutage", "TrafficDrop"),  # transitively
    ],
)
def test_a_cause_and_its_effect_join_either_way(member, arriving):
    open_ = [incident(1, member)]
    assert choose_incident(arriving, open_, TOPOLOGY, T0 + timedelta(minutes=1)) is open_[0]


def test_unrelated_late_or_resolved_incidents_are_not_joined():
    now = T0 + timedelta(minutes=31)
    assert (
        choose_incident("PaymentFailureRatioHigh", [incident(1, "TrafficDrop")], TOPOLOGY, T0)
        is None
    )
    assert choose_incident("TrafficDrop", [incident(1, "TrafficDrop")], TOPOLOGY, now) is None
    assert choose_incident("X", [incident(1, "X", last=2)], TOPOLOGY, now) is not None
    resolved = incident(1, "TrafficDrop", status="resolved")
    assert choose_incident("TrafficDrop", [resolved], TOPOLOGY, T0) is None


def test_the_most_recently_active_related_incident_is_joined():
    older, newer = incident(1, "DatabaseUnreachable"), incident(2, "ApiErrorRatioHigh", last=3)
    now = T0 + timedelta(minutes=4)
    assert choose_incident("DashboardResponseTimeHigh", [older, newer], TOPOLOGY, now) is newer


def test_severity_probable_cause_pages_and_resolution():
    book = IncidentBook([], TOPOLOGY, T0)
    api = alert("ApiErrorRatioHigh", "a", severity="high")
    pay = alert("PaymentFailureRatioHigh", "p", "org-1", severity="critical")
    db = alert("DatabaseUnreachable", "d", severity="critical")
    first = book.place(api)
    assert book.place(db) is first
    assert book.place(pay) is first
    assert first.severity == "critical"
    assert first.probable_cause(TOPOLOGY) == "DatabaseUnreachable"  # upstream, though not first
    assert book.would_page(first, api)
    book.paged(first, api)
    assert not book.would_page(first, alert("ApiErrorRatioHigh", "a2", severity="medium"))
    assert book.would_page(first, db)  # the severity rises
    for done in ("a", "p"):
        book.place(alert("x", done, status="resolved"))
        assert first.is_open
        assert not book.resolves(first)
    book.place(alert("DatabaseUnreachable", "d", status="resolved"))
    assert not first.is_open
    assert book.resolves(first)
    book.resolve_sent(first)
    assert not book.resolves(first)  # once


def test_alerts_without_a_place_in_the_map_group_by_name_only():
    book = IncidentBook([], TOPOLOGY, T0)
    a = book.place(alert("Watchdog", "w"))
    b = book.place(alert("AlertFlood", "f"))
    assert a is not b
    assert a.probable_cause(TOPOLOGY) == "Watchdog"


def paged(id_: int, name: str, severity: str | None, minute: int, org: str) -> Incident:
    """A stored incident of one alert, opened ``minute`` after T0 and paged at ``severity``."""
    at = T0 + timedelta(minutes=minute)
    member = Member(f"fp{id_}", at, name, org, severity or "high", "firing", at)
    return Incident(id_, at, at, paged_severity=severity, members=[member], labels={"o": org})


def test_a_late_cause_merges_the_incidents_of_its_effects():
    """API errors, then payment failures (unrelated: two incidents, two pages), then the
    database alert related to both: one incident, caused by the database."""
    api = paged(1, "ApiErrorRatioHigh", "high", 0, "org-1")
    pay = paged(2, "PaymentFailureRatioHigh", "high", 1, "org-3")
    now = T0 + timedelta(minutes=3)
    assert related_incidents("DatabaseErrorsHigh", [api, pay], TOPOLOGY, now) == [api, pay]
    book = IncidentBook([api, pay], TOPOLOGY, now)
    db = alert("DatabaseErrorsHigh", "db", severity="high")
    assert book.place(db) is api  # both paged high: the oldest carries on
    assert [m.alertname for m in api.members] == [
        "ApiErrorRatioHigh",
        "PaymentFailureRatioHigh",
        "DatabaseErrorsHigh",
    ]
    moved = api.members[1]
    assert moved.identity == ("fp2", T0 + timedelta(minutes=1))
    assert moved.new
    assert not pay.members[0].new  # the absorbed incident no longer writes its alert's row
    assert api.probable_cause(TOPOLOGY) == "DatabaseErrorsHigh"
    assert api.title(TOPOLOGY) == "DatabaseErrorsHigh and 2 related alerts across 2 organizations"
    assert api.labels == {}  # no label common to all its alerts any more
    assert api.paged_severity == "high"
    assert not book.would_page(api, db)
    assert (pay.status, pay.merged_into, pay.resolved_at) == ("resolved", 1, now)
    assert pay.events == [("merged_into", {"incident_id": 1, "alertname": "DatabaseErrorsHigh"})]
    assert ("merged", {"incidents": [2], "alertname": "DatabaseErrorsHigh"}) in api.events
    assert not book.resolves(pay)  # never a resolve of its own: the problem goes on
    assert [(m.absorbed, m.survivor, m.organizations) for m in book.merges] == [
        (pay, api, ("org-3",))
    ]
    assert set(book.touched) == {1, 2}
    # the moved alert's later events belong to the survivor
    assert book.place(alert("x", "fp2", status="resolved")) is None  # other starts_at
    labels = {"alertname": "PaymentFailureRatioHigh", "severity": "high"}
    later = Alert("fp2", "resolved", labels, {}, moved.starts_at, now)
    assert book.place(later) is api
    assert api.is_open


@pytest.mark.parametrize(
    ("severities", "survivor"),
    [
        (("high", "high"), 1),  # equals: the oldest
        (("high", "critical"), 2),  # the one paged at the highest severity
        ((None, "low"), 2),  # a paged one before a never-paged one
        ((None, None), 1),
    ],
)
def test_the_survivor_is_the_highest_paged_then_the_oldest(severities, survivor):
    first = paged(1, "ApiErrorRatioHigh", severities[0], 0, "org-1")
    second = paged(2, "PaymentFailureRatioHigh", severities[1], 1, "org-1")
    assert choose_survivor([second, first]).id == survivor
    book = IncidentBook([first, second], TOPOLOGY, T0 + timedelta(minutes=2))
    db = alert("DatabaseUnreachable", "db", severity="medium")
    kept = book.merge([first, second], db)
    assert kept.id == survivor
    assert kept.opened_at == T0  # the problem began with the older one
    ranks = {None: -1, "low": 0, "high": 2, "critical": 3}
    assert kept.paged_severity == max(severities, key=ranks.__getitem__)
    assert kept.labels == {"o": "org-1"}  # the labels both had
    assert book.place(db) is kept
    assert len(kept.members) == 3


def test_incidents_opened_in_the_same_transaction_merge_without_a_trace():
    book = IncidentBook([], TOPOLOGY, T0)
    api = book.place(alert("ApiErrorRatioHigh", "a"))
    pay = book.place(alert("PaymentFailureRatioHigh", "p", "org-3"))
    assert api is not pay
    db = book.place(alert("DatabaseErrorsHigh", "d"))
    assert db is api
    assert book.incident_of(alert("PaymentFailureRatioHigh", "p")) is api
    assert book.merges == []
    assert list(book.incidents) == [api.id]
    book.renumber([7])
    assert api.id == 7
    assert len(api.members) == 3
    assert [k for k, _ in api.events].count("opened") == 1
    assert "merged" not in [k for k, _ in api.events]


def test_an_alert_of_one_incident_merges_nothing():
    api = paged(1, "ApiErrorRatioHigh", "high", 0, "org-1")
    late = paged(2, "PaymentFailureRatioHigh", "high", -40, "org-3")  # out of the window
    book = IncidentBook([api, late], TOPOLOGY, T0 + timedelta(minutes=1))
    assert book.place(alert("DatabaseErrorsHigh", "d")) is api
    assert book.merges == []
    assert late.is_open


async def start(db_url, aiohttp_client, *channels: str) -> BridgeClient:
    clock = Clock()
    chans = notifiers(*(channels or ("slack", "email", "pagerduty", "sms")))
    app = create_app(make_config(db_url), notifiers=chans, clock=clock, workers=False)
    return BridgeClient(await aiohttp_client(app), app[BRIDGE], chans, clock)


async def post(client: BridgeClient, *alerts, group_key: str) -> None:
    data = body(payload(*alerts, group_key=group_key))
    response = await client.post("/v1/alertmanager", data=data, headers=AUTH)
    assert response.status == 200, await response.text()
    await client.bridge.delivery.run_once()


def widget(org: int, status: str = "firing") -> dict:
    return am_alert(
        "WidgetLoadErrorRatioHigh",
        fingerprint=f"w{org:02d}",
        severity="high",
        category="widget",
        organization_id=f"org-{org}",
        status=status,
    )


OUTAGE = {"fingerprint": "outage", "severity": "critical", "category": "widget"}


async def test_a_widget_outage_across_twelve_organizations_is_one_incident_one_page(
    db_url, aiohttp_client
):
    client = await start(db_url, aiohttp_client)
    for org in range(12):  # Alertmanager groups by organization: twelve notifications
        await post(client, widget(org), group_key=f"widget-org-{org}")
        client.clock.advance(10)
    client.clock.advance(30)  # the platform outage, under three minutes after the first
    outage = am_alert("WidgetPlatformOutage", organization_id=None, **OUTAGE)
    await post(client, outage, group_key="outage")

    [row] = await client.bridge.storage.incidents()
    assert (row.status, row.severity, row.probable_cause) == (
        "firing",
        "critical",
        outage["labels"]["alertname"],
    )
    assert row.alert_count == 13
    assert len(row.organizations) == 12
    slack = client.chans["slack"].messages
    # One page when it opened (high) and one when its severity rose (critical), no more.
    assert [(m.status, m.severity) for m in slack] == [("firing", "high"), ("firing", "critical")]
    assert {m.incident_id for m in slack} == {row.id}
    assert "Incident #" in slack[1].title
    assert "WidgetPlatformOutage" in slack[1].title
    assert [m.severity for m in client.chans["email"].messages] == ["high", "critical"]
    [page] = client.chans["pagerduty"].messages
    assert len(client.chans["sms"].messages) == 1

    for org in range(12):  # the incident resolves with its last alert, once
        await post(client, widget(org, "resolved"), group_key=f"widget-org-{org}")
    assert len(slack) == 2
    assert len(client.chans["pagerduty"].messages) == 1
    await post(client, {**outage, "status": "resolved"}, group_key="outage")
    assert [m.status for m in slack] == ["firing", "firing", "resolved"]
    [_, resolve] = client.chans["pagerduty"].messages  # resolved where it paged
    notifier = PagerDutyNotifier("k", "http://pagerduty.test/")
    try:
        events = [e for m in (page, resolve) for _, e in notifier.events(m, "k")]
    finally:
        await notifier.aclose()
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert {e["dedup_key"] for e in events} == {incident_dedup_key(row.id)}
    [row] = await client.bridge.storage.incidents()
    assert row.status == "resolved"
    assert row.resolved_at == client.clock.now
    kinds = await client.bridge.storage.query(
        "SELECT kind FROM incident_events WHERE kind NOT LIKE 'alert_%' ORDER BY id"
    )
    assert [k["kind"] for k in kinds] == [
        "opened",
        "paged",
        "severity_raised",
        "resolved",
        "paged_resolved",
    ]


async def test_a_database_outage_is_one_incident_caused_by_the_database(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client, "slack")
    api = am_alert(
        "ApiErrorRatioHigh", fingerprint="api", category="dashboard", organization_id=None
    )
    db = am_alert(
        "DatabaseUnreachable",
        fingerprint="db",
        severity="critical",
        category="dashboard",
        organization_id=None,
    )
    pay = am_alert("PaymentFailureRatioHigh", fingerprint="pay", organization_id="org-3")
    for alert_, key in ((api, "api"), (db, "db"), (pay, "pay")):  # the effect seen first
        await post(client, alert_, group_key=key)
        client.clock.advance(20)
    [row] = await client.bridge.storage.incidents()
    assert row.probable_cause == "DatabaseUnreachable"
    assert row.severity == "critical"
    assert sorted(row.alertnames) == sorted(
        ["ApiErrorRatioHigh", "DatabaseUnreachable", "PaymentFailureRatioHigh"]
    )
    assert row.title.startswith("DatabaseUnreachable and 2 related alerts")
    tables = await client.bridge.storage.query(
        "SELECT incident_id FROM dashboard_alerts UNION SELECT incident_id FROM payment_alerts"
    )
    assert [t["incident_id"] for t in tables] == [row.id]
    assert [m.severity for m in client.chans["slack"].messages] == ["high", "critical"]


async def test_unrelated_alerts_an_hour_apart_are_two_incidents(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client, "slack")
    await post(client, am_alert("TrafficDrop", fingerprint="t", category="traffic"), group_key="t")
    client.clock.advance(3600)
    await post(client, am_alert("PaymentFailureRatioHigh", fingerprint="p"), group_key="p")
    client.clock.advance(3600)  # the same alert again, past the window: its own incident too
    await post(
        client, am_alert("TrafficDrop", fingerprint="t2", category="traffic"), group_key="t2"
    )
    rows = await client.bridge.storage.incidents()
    assert [r.probable_cause for r in rows] == [
        "TrafficDrop",
        "PaymentFailureRatioHigh",
        "TrafficDrop",
    ]
    assert [m.incident_id for m in client.chans["slack"].messages] == [r.id for r in rows]


async def test_two_replicas_open_one_incident_for_one_problem(db_url, aiohttp_client):
    """Twelve organizations' alerts posted at once to two bridges on one database: the
    incident lock lets one open the incident and the other join it."""
    clients = [await start(db_url, aiohttp_client, "slack") for _ in range(2)]
    responses = await asyncio.gather(
        *(
            clients[org % 2].post(
                "/v1/alertmanager",
                data=body(payload(widget(org), group_key=f"widget-org-{org}")),
                headers=AUTH,
            )
            for org in range(12)
        )
    )
    assert [r.status for r in responses] == [200] * 12
    await asyncio.gather(*(c.bridge.delivery.run_once() for c in clients))
    [row] = await clients[0].bridge.storage.incidents()
    assert row.alert_count == 12
    assert sum(len(c.chans["slack"].messages) for c in clients) == 1


async def test_resolved_incidents_are_purged_with_their_timeline(db_url, aiohttp_client):
    client = await start(db_url, aiohttp_client, "slack")
    await post(client, widget(1), group_key="w1")
    await post(client, widget(1, "resolved"), group_key="w1")
    await post(client, widget(2), group_key="w2")
    counts = await client.bridge.storage.purge(client.clock.now + timedelta(days=1))
    assert counts["incidents"] == 1
    [row] = await client.bridge.storage.incidents()
    assert row.status == "firing"


async def pd_events(messages) -> list[tuple[str, str]]:
    """(event_action, dedup_key) of what PagerDuty's channel sends for these messages."""
    notifier = PagerDutyNotifier("k", "http://pagerduty.test/")
    try:
        return [
            (e["event_action"], e["dedup_key"])
            for m in messages
            for _, e in notifier.events(m, "k")
        ]
    finally:
        await notifier.aclose()


def outage_alerts(api_severity: str) -> tuple[dict, dict, dict]:
    api = am_alert(
        "ApiErrorRatioHigh",
        fingerprint="api",
        severity=api_severity,
        category="dashboard",
        organization_id=None,
    )
    pay = am_alert(
        "PaymentFailureRatioHigh", fingerprint="pay", severity="critical", organization_id="org-3"
    )
    db = am_alert("DatabaseErrorsHigh", fingerprint="db", category="system", organization_id=None)
    return api, pay, db


async def test_a_late_database_alert_merges_two_paged_incidents_into_one(db_url, aiohttp_client):
    """API errors and payment failures page two incidents; the database alert makes them one:
    the older carries on without a second page, the other's PagerDuty incident is resolved and
    Slack told where it went; PagerDuty resolves the survivor only when the outage is over."""
    client = await start(db_url, aiohttp_client, "slack", "pagerduty")
    api, pay, db = outage_alerts("critical")
    for alert_ in (api, pay, db):
        await post(client, alert_, group_key=alert_["fingerprint"])
        client.clock.advance(60)
    first, second = await client.bridge.storage.incidents()
    assert (first.status, first.probable_cause, first.alert_count) == (
        "firing",
        "DatabaseErrorsHigh",
        3,
    )
    assert (second.status, second.merged_into) == ("resolved", first.id)
    slack, pagerduty = client.chans["slack"].messages, client.chans["pagerduty"].messages
    one, two = incident_dedup_key(first.id), incident_dedup_key(second.id)
    assert await pd_events(pagerduty) == [("trigger", one), ("trigger", two), ("resolve", two)]
    assert [(m.incident_id, m.status, m.action) for m in slack] == [
        (first.id, "firing", ""),
        (second.id, "firing", ""),
        (second.id, "resolved", "merged"),  # one line, and no page for the survivor
    ]
    note = slack[-1]
    assert note.title == f"[MERGED] Incident #{second.id}: PaymentFailureRatioHigh (org-3)"
    assert note.notice.startswith(
        f"Merged into incident #{first.id}: DatabaseErrorsHigh and 2 related alerts"
    )
    kinds = await client.bridge.storage.query(
        "SELECT incident_id, kind FROM incident_events WHERE kind LIKE 'merged%' ORDER BY id"
    )
    assert [(k["incident_id"], k["kind"]) for k in kinds] == [
        (second.id, "merged_into"),
        (first.id, "merged"),
    ]

    for alert_ in (api, pay):  # the effects end first: the outage is not over
        await post(client, {**alert_, "status": "resolved"}, group_key=alert_["fingerprint"])
    assert len(pagerduty) == 3
    assert len(slack) == 3
    await post(client, {**db, "status": "resolved"}, group_key="db")
    assert (await pd_events(pagerduty))[3:] == [("resolve", one)]  # once, when all of it resolved
    assert [(m.incident_id, m.status) for m in slack[3:]] == [(first.id, "resolved")]
    rows = await client.bridge.storage.incidents()
    assert [r.status for r in rows] == ["resolved", "resolved"]


async def test_the_incident_paged_highest_survives_a_merge(db_url, aiohttp_client):
    """API errors paged high (Slack), payment failures critical (Slack and PagerDuty): the
    critical one carries on, so PagerDuty keeps its incident; the other only gets its line."""
    client = await start(db_url, aiohttp_client, "slack", "pagerduty")
    api, pay, db = outage_alerts("high")
    for alert_ in (api, pay, db):
        await post(client, alert_, group_key=alert_["fingerprint"])
        client.clock.advance(60)
    first, second = await client.bridge.storage.incidents()
    assert (first.status, first.merged_into) == ("resolved", second.id)
    assert (second.status, second.probable_cause, second.opened_at) == (
        "firing",
        "DatabaseErrorsHigh",
        first.opened_at,
    )
    slack, pagerduty = client.chans["slack"].messages, client.chans["pagerduty"].messages
    two = incident_dedup_key(second.id)
    assert await pd_events(pagerduty) == [("trigger", two)]  # no resolve: the outage goes on
    assert [(m.incident_id, m.action) for m in slack] == [
        (first.id, ""),
        (second.id, ""),
        (first.id, "merged"),
    ]
    for alert_ in (api, pay, db):
        await post(client, {**alert_, "status": "resolved"}, group_key=alert_["fingerprint"])
    assert await pd_events(pagerduty) == [("trigger", two), ("resolve", two)]
    assert [(m.incident_id, m.status) for m in slack[3:]] == [(second.id, "resolved")]
