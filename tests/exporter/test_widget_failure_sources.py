"""Who reports an organization's widget failures (issue 18): distinct client networks per
organization over 5 minutes, exact up to a cap, aged at each scrape, bounded in memory."""

from __future__ import annotations

from exporter.config import ExporterConfig
from exporter.events import WidgetLoadError, WidgetScriptError
from exporter.sources import RecentDistinct
from exporter.widget_reports import ORGANIZATION_SOURCE_WINDOW
from tests.exporter.support import make_recorder

GAUGE = "passiton_widget_failure_organization_sources"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_recent_distinct_counts_networks_within_the_window_up_to_its_cap():
    clock = Clock()
    seen = RecentDistinct(300, cap=4, clock=clock)
    for address in ("198.51.100.1", "198.51.100.1", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9"):
        seen.add(address)
    assert seen.count() == 2  # one IPv6 /64 is one source, a repeat is no new one
    for i in range(10):
        seen.add(f"203.0.113.{i}")
    assert seen.count() == 4  # at least the cap
    clock.now += 301
    assert seen.count() == 0
    seen.add("203.0.113.200")
    assert seen.count() == 1


def test_the_recorder_counts_sources_per_organization_and_ages_them():
    clock = Clock()
    recorder, registry = make_recorder(ExporterConfig(), clock)

    def value(org: str) -> float | None:
        return registry.get_sample_value(GAUGE, {"organization_id": org})

    fake = [WidgetLoadError(organization_id=org, widget_id="w") for org in ("a", "b", "c")]
    recorder.record(fake)
    recorder.widget_reports.count(fake, "beacon", "203.0.113.9")
    for donor in range(5):
        event = [WidgetScriptError(organization_id="d", widget_id="w")]
        recorder.record(event)
        recorder.widget_reports.count(event, "beacon", f"198.51.100.{donor}")
    # the authenticated events API names no client: it corroborates through its own channel
    recorder.widget_reports.count(fake, "events")
    assert [value(org) for org in "abcd"] == [1, 1, 1, 5]
    clock.now += ORGANIZATION_SOURCE_WINDOW / 2
    recorder.expire_idle()
    assert value("d") == 5
    clock.now += ORGANIZATION_SOURCE_WINDOW
    recorder.expire_idle()  # every scrape ages them: nobody reported since
    assert [value(org) for org in "abcd"] == [0, 0, 0, 0]
