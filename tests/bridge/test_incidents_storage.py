"""The incidents' storage: the migration, the lock, the open incidents and their writes."""

from __future__ import annotations

from datetime import timedelta

from bridge.incidents import IncidentBook
from bridge.model import Alert
from bridge.storage import Storage
from bridge.topology import load_topology
from tests.bridge.support import T0


def alert(name: str, fp: str, org: str | None, severity: str = "high", status: str = "firing"):
    labels = {"alertname": name, "severity": severity, "category": "widget"}
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
