"""Who reported widget errors, and through which channel: the evidence that tells an outage seen
by many browsers from a few clients crying wolf.

Every widget error a batch holds is counted by the channel it arrived through ("events": the
authenticated API, "beacon": browsers). A beacon's errors also add its client (a keyed hash of
its network, never the address) to the platform's distinct failure sources and to each reported
organization's own, over the widget rules' 5-minute window."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from exporter.events import WIDGET_ERRORS
from exporter.labels import BoundedLabel
from exporter.metrics import ExporterMetrics
from exporter.series import Children
from exporter.sources import RecentDistinct, SourceWindow

# the window of the organizations' distinct widget-failure sources: the widget rules' 5 minutes
ORGANIZATION_SOURCE_WINDOW = 300
_WIDGET_ERROR_TYPES = frozenset(WIDGET_ERRORS)


class WidgetReports:
    """``organization`` bounds the widget organizations' label values; ``per_organization`` is
    the recorder's children of passiton_widget_failure_organization_sources (forgotten with the
    organization's other series)."""

    def __init__(
        self,
        metrics: ExporterMetrics,
        sources: SourceWindow,
        organization: BoundedLabel,
        per_organization: Children,
        clock: Callable[[], float],
    ) -> None:
        self._sources = sources
        self._organization = organization
        self._per_organization = per_organization
        self._clock = clock
        # per widget organization (a bounded label value): who reported its widget errors
        self._recent: dict[str, RecentDistinct] = {}
        self._reports = {
            channel: metrics.widget_error_reports.labels(channel=channel)
            for channel in ("events", "beacon")
        }
        metrics.widget_failure_sources.set_function(lambda: self._sources.snapshot()[2])

    def count(self, events: Iterable[Any], channel: str, client: str | None = None) -> None:
        """Count the widget errors among recorded ``events`` by ``channel``; each one from a
        beacon adds its ``client`` to the distinct failure sources."""
        if client is None:  # counted only: one C pass over the batch
            errors = sum(map(_WIDGET_ERROR_TYPES.__contains__, map(type, events)))
            if errors:
                self._reports[channel].inc(errors)
            return
        errors = 0
        organizations: set[str] = set()
        for e in events:
            if isinstance(e, WIDGET_ERRORS):
                errors += 1
                organizations.add(e.organization_id)
        if errors:
            self._sources.add(client, errors)
            self._reports[channel].inc(errors)
        for organization_id in organizations:
            org = self._organization(organization_id)
            sources = self._recent.get(org)
            if sources is None:
                sources = self._recent[org] = RecentDistinct(
                    ORGANIZATION_SOURCE_WINDOW, clock=self._clock
                )
            sources.add(client)
            self._per_organization(org).set(sources.count())

    def refresh(self) -> None:
        """Age the organizations' distinct widget-failure sources (called at each scrape): an
        organization nobody reports for falls back to 0 and is then forgotten."""
        for org, sources in list(self._recent.items()):
            count = sources.count()
            self._per_organization(org).set(count)
            if not count:
                del self._recent[org]
