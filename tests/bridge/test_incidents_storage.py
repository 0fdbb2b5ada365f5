"""The incidents' storage: the migration, the lock, the open incidents and their writes."""

from __future__ import annotations

import json
from datetime import timedelta

from bridge.codec import encode_message
from bridge.incidents import IncidentBook
from bridge.model import Alert, Message
from bridge.oncall.escalation import NewEscalation, Page, Walk
from bridge.storage import Storage
from bridge.storage.migrations import load_migrations
from bridge.topology import load_topology
from tests.bridge.support import T0


def alert(
    name: str,
    fp: str,
    org: str | None,
    severity: str = "high",
    status: str = "firing",
    category: str = "widget",
):
    labels = {"alertname": name, "severity": severity, "category": category}
    if org:
        labels["organization_id"] = org
    return Alert(fp, status, labels, {}, T0, None)


async def test_incidents_are_written_and_read_back(db_url):
    topology = load_topology()
    async with Storage(db_url) as storage:
        alerts = [alert("WidgetLoadErrorRatioHigh", f"fp{i}", f"org-{i}") for i in range(3)]
        async with storage.transaction() as tx:
            await tx.store_alerts(alerts, [a.fingerprint for a in alerts], T0)
            await tx.lock_incidents()
            assert await tx.open_incidents() == []
            book = IncidentBook([], topology, T0)
            assert len({book.place(a).id for a in alerts}) == 1
            book.renumber(await tx.reserve_incident_ids(len(book.new_incidents)))
            placed = {book.place(a).id for a in alerts}
            await tx.save_incidents(list(book.touched.values()), topology, T0)
        [row] = await storage.incidents()
        assert row.id in placed
        assert (row.status, row.severity, row.alert_count) == ("firing", "high", 3)
        assert row.organizations == ["org-0", "org-1", "org-2"]
        assert row.probable_cause == "WidgetLoadErrorRatioHigh"
        linked = await storage.query("SELECT incident_id FROM widget_alerts")
        assert {r["incident_id"] for r in linked} == {row.id}
        kinds = await storage.query("SELECT kind FROM incident_events ORDER BY id")
        assert [k["kind"] for k in kinds] == ["opened"] + ["alert_joined"] * 3

        later = T0 + timedelta(minutes=2)
        outage = alert("WidgetPlatformOutage", "fpx", None, "critical")
        async with storage.transaction() as tx:
            await tx.store_alerts([outage], ["k"], later)
            await tx.lock_incidents()
            [open_] = await tx.open_incidents()
            assert len(open_.members) == 3
            book = IncidentBook([open_], topology, later)
            assert book.place(outage) is open_
            await tx.save_incidents(list(book.touched.values()), topology, later)
        [row] = await storage.incidents()
        assert (row.severity, row.probable_cause, row.alert_count) == (
            "critical",
            "WidgetPlatformOutage",
            4,
        )
        assert row.title == "WidgetPlatformOutage and 3 related alerts across 3 organizations"
        rls = await storage.query(
            "SELECT relname FROM pg_class WHERE relname IN ('incidents', 'incident_events')"
            " AND relrowsecurity"
        )
        assert len(rls) == 2


async def test_a_merge_moves_the_alerts_ends_the_absorbed_and_hands_over_its_escalation(db_url):
    """API errors and payment failures stored as two paged incidents, the second escalating;
    then the database alert: one incident, the other ended, its escalation stopped."""
    topology = load_topology()
    api = alert("ApiErrorRatioHigh", "api", None, category="dashboard")
    pay = alert("PaymentFailureRatioHigh", "pay", "org-3", category="payment")
    db = alert("DatabaseErrorsHigh", "db", None, category="system")
    walk = Walk("active", 1, 0, T0 + timedelta(minutes=6))
    async with Storage(db_url) as storage:
        ids = []
        for minute, arriving in enumerate((api, pay)):
            now = T0 + timedelta(minutes=minute)
            async with storage.transaction() as tx:
                await tx.store_alerts([arriving], [arriving.fingerprint], now)
                await tx.lock_incidents()
                book = IncidentBook(await tx.open_incidents(), topology, now)
                incident = book.place(arriving)
                book.renumber(await tx.reserve_incident_ids(1))
                book.paged(incident, arriving)
                await tx.save_incidents(list(book.touched.values()), topology, now)
                ids.append(incident.id)
        first, second = ids
        async with storage.transaction() as tx:  # the second is escalating: Alice paged
            page = encode_message(Message("incident", "firing", "bridge", (pay,)))
            escalation = NewEscalation(second, "default", walk, page, {})
            assert await tx.start_escalations([escalation], T0) == 1
            assert await tx.escalation_for_update(second) == ("default", walk)  # at step 2
            await tx.record_pages(second, [Page("alice", "sms", "+15005550011")], 0, 0, T0)

        now = T0 + timedelta(minutes=3)
        async with storage.transaction() as tx:
            await tx.store_alerts([db], ["db"], now)
            await tx.lock_incidents()
            book = IncidentBook(await tx.open_incidents(), topology, now)
            survivor = book.place(db)
            assert survivor.id == first
            inherited = await tx.hand_over_escalations(
                [(m.absorbed.id, m.survivor.id) for m in book.merges], now
            )
            await tx.save_incidents(list(book.touched.values()), topology, now)
        assert inherited == {first: ("default", walk)}

        kept, ended = await storage.incidents()
        assert (kept.id, kept.status, kept.probable_cause, kept.alert_count) == (
            first,
            "firing",
            "DatabaseErrorsHigh",
            3,
        )
        assert kept.title == "DatabaseErrorsHigh and 2 related alerts (org-3)"
        assert (kept.merged_into, kept.paged_severity, kept.opened_at) == (None, "high", T0)
        assert (ended.id, ended.status, ended.merged_into, ended.resolved_at) == (
            second,
            "resolved",
            first,
            now,
        )
        assert ended.title == "PaymentFailureRatioHigh (org-3)"  # what it was, for the record
        linked = await storage.query(
            "SELECT incident_id FROM dashboard_alerts UNION ALL SELECT incident_id FROM"
            " payment_alerts UNION ALL SELECT incident_id FROM system_alerts"
        )
        assert [r["incident_id"] for r in linked] == [first] * 3
        events = await storage.query(
            "SELECT incident_id, kind, detail::text AS detail FROM incident_events"
            " WHERE kind LIKE 'merged%' ORDER BY id"
        )
        assert [(e["incident_id"], e["kind"], json.loads(e["detail"])) for e in events] == [
            (second, "merged_into", {"incident_id": first, "alertname": "DatabaseErrorsHigh"}),
            (first, "merged", {"incidents": [second], "alertname": "DatabaseErrorsHigh"}),
        ]
        [stopped] = await storage.query("SELECT state, next_at FROM escalations")
        assert (stopped["state"], stopped["next_at"]) == ("done", None)
        notified = await storage.query(
            "SELECT incident_id, person_id FROM escalation_notifications ORDER BY id"
        )
        assert [(n["incident_id"], n["person_id"]) for n in notified] == [
            (second, "alice"),
            (first, "alice"),  # an SMS "ack" from Alice now finds the survivor
        ]
        async with storage.transaction() as tx:
            assert await tx.newest_paged_incident("alice") == first
            assert await tx.surviving_incident(second) == first
            assert await tx.surviving_incident(first) == first
            assert await tx.surviving_incident(999) == 999  # no such incident: unchanged
            await tx.lock_incidents()
            [open_] = await tx.open_incidents()
            assert {m.fingerprint for m in open_.members} == {"api", "pay", "db"}
            assert await tx.hand_over_escalations([(second, first)], now) == {}  # once

        migration = next(m for m in load_migrations() if m.version == "0010_incident_merge")
        await storage.execute(migration.sql)  # idempotent
