"""Scores alert episodes against the ground truth of the seeded incidents."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from backtest.alerts import Episode
from backtest.paging import OPENED, RESOLVED, Page, Paging
from backtest.scenario import GRACE_SECONDS, PAGING_SEVERITIES, Incident
from bridge.model import SEVERITIES

# Alerts that always fire by design (the dead man's switch's heartbeat) are not pages.
IGNORED = frozenset({"Watchdog"})


@dataclass
class IncidentResult:
    name: str
    category: str
    start: int
    duration: int
    expected: list[str]
    detected: bool
    detected_by: str
    time_to_detect: int | None  # seconds from the start of the incident to the first page
    alerts: dict[str, int]  # alertname/severity → firings within the incident
    flaps: int  # an alert instance resolving and firing again within the incident
    most_pages_per_alert: int
    # as the bridge pages (backtest/paging.py): one page per incident opening or severity rise
    firings: int = 0  # before incidents: every firing after inhibition was a notification
    pages: int = 0  # the bridge's pages within the incident (openings and rises)
    pages_by_severity: dict[str, int] = field(default_factory=dict)
    resolves: int = 0  # resolves of the bridge incidents opened within it
    bridge_incidents: int = 0  # bridge incidents paging within it
    probable_cause: list[str] = field(default_factory=list)  # of those bridge incidents


@dataclass
class Report:
    start: int
    end: int
    calm_until: int
    step: int
    incidents: list[IncidentResult]
    outside: dict[str, int]  # alertname/severity → firings outside every incident
    outside_calm_pages: dict[str, int]  # critical/high firings in the calm weeks
    bridge_outside: dict[str, int] = field(default_factory=dict)  # severity → bridge pages
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(e: Episode) -> str:
    return f"{e.alertname}/{e.severity}"


def score(
    found: list[Episode], incidents: list[Incident], origin: int, start: int, end: int, step: int,
    calm_until: int, paging: Paging | None = None,
) -> Report:  # fmt: skip
    """``paging``: the bridge's pages of these firings (``backtest.paging.bridge_pages``)."""
    found = [e for e in found if e.alertname not in IGNORED]
    windows = [(origin + i.start, origin + i.end + GRACE_SECONDS) for i in incidents]
    paging = paging or Paging()
    firing_pages = paging.firing
    opened_at = {p.incident: p.at for p in paging.pages if p.kind == OPENED}
    results = []
    for incident, (begin, finish) in zip(incidents, windows, strict=True):
        paged = [p for p in firing_pages if begin <= p.at < finish]
        ids = list(dict.fromkeys(p.incident for p in paged))
        opened = {i for i, at in opened_at.items() if begin <= at < finish}
        inside = [e for e in found if begin <= e.fired_at < finish]
        expected = [e for e in inside if e.alertname in incident.expected]
        first = min(expected, key=lambda e: e.fired_at, default=None)
        per_instance = Counter((e.alertname, e.severity, e.labels) for e in inside)
        results.append(
            IncidentResult(
                name=incident.name,
                category=incident.category,
                start=begin,
                duration=incident.duration,
                expected=list(incident.expected),
                detected=first is not None,
                detected_by=_key(first) if first else "",
                time_to_detect=first.fired_at - begin if first else None,
                alerts=dict(sorted(Counter(_key(e) for e in inside).items())),
                flaps=sum(n - 1 for n in per_instance.values()),
                most_pages_per_alert=max(per_instance.values(), default=0),
                firings=len(inside),
                pages=len(paged),
                pages_by_severity=_by_severity(paged),
                resolves=sum(p.kind == RESOLVED and p.incident in opened for p in paging.pages),
                bridge_incidents=len(ids),
                probable_cause=list(dict.fromkeys(paging.causes[i] for i in ids)),
            )
        )
    outside = [e for e in found if not any(b <= e.fired_at < f for b, f in windows)]
    calm = [e for e in outside if e.fired_at < calm_until and e.severity in PAGING_SEVERITIES]
    report = Report(
        start=start,
        end=end,
        calm_until=calm_until,
        step=step,
        incidents=results,
        outside=dict(sorted(Counter(_key(e) for e in outside).items())),
        outside_calm_pages=dict(sorted(Counter(_key(e) for e in calm).items())),
        bridge_outside=_by_severity(
            [p for p in firing_pages if not any(b <= p.at < f for b, f in windows)]
        ),
    )
    times = [r.time_to_detect for r in results if r.time_to_detect is not None]
    paging_outside = sum(
        n for k, n in report.outside.items() if k.split("/")[1] in PAGING_SEVERITIES
    )
    report.summary = {
        "incidents": len(results),
        "detected": sum(r.detected for r in results),
        "median_time_to_detect_seconds": statistics.median(times) if times else None,
        "max_time_to_detect_seconds": max(times) if times else None,
        "pages_outside_incidents": paging_outside,
        "pages_in_calm_weeks": sum(report.outside_calm_pages.values()),
        "flaps": sum(r.flaps for r in results),
        "most_pages_per_alert_per_incident": max(
            (r.most_pages_per_alert for r in results), default=0
        ),
        # notifications per incident before (one per firing after inhibition) and after (the
        # bridge's incidents); the bridge's target: at most one page per severity per incident
        "firings_in_incidents": sum(r.firings for r in results),
        "bridge_pages_in_incidents": sum(r.pages for r in results),
        "bridge_resolves_in_incidents": sum(r.resolves for r in results),
        "most_firings_per_incident": max((r.firings for r in results), default=0),
        "most_bridge_pages_per_incident": max((r.pages for r in results), default=0),
        "most_bridge_pages_per_severity_per_incident": max(
            (n for r in results for n in r.pages_by_severity.values()), default=0
        ),
        "firings_outside_incidents": sum(report.outside.values()),
        "bridge_pages_outside_incidents": sum(report.bridge_outside.values()),
    }
    return report


def _by_severity(pages: list[Page]) -> dict[str, int]:
    counts = Counter(p.severity for p in pages)
    return {s: counts[s] for s in SEVERITIES if counts[s]}


def _minutes(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds / 60:.1f} min"


def render(report: Report) -> str:
    lines = [
        "| incident | expected alert | detected | time to detect | flaps | most pages per alert |"
        " alerts fired |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.incidents:
        fired = ", ".join(f"{k} x{n}" for k, n in r.alerts.items()) or "—"
        lines.append(
            f"| {r.name} | {' / '.join(r.expected)} | {'yes' if r.detected else '**no**'}"
            f"{' (' + r.detected_by + ')' if r.detected else ''} | {_minutes(r.time_to_detect)} |"
            f" {r.flaps} | {r.most_pages_per_alert} | {fired} |"
        )
    lines.append("")
    by_alert: dict[str, int] = defaultdict(int)
    by_alert.update(report.outside)
    lines.append("Firings outside incidents (alert/severity: count): " + (
        ", ".join(f"{k} {n}" for k, n in by_alert.items()) or "none"
    ))  # fmt: skip
    s = report.summary
    lines.append("")
    lines.append(
        f"Detected {s['detected']}/{s['incidents']}; median time to detect "
        f"{_minutes(s['median_time_to_detect_seconds'])}, max "
        f"{_minutes(s['max_time_to_detect_seconds'])}; critical/high pages outside incidents "
        f"{s['pages_outside_incidents']} (in the calm weeks {s['pages_in_calm_weeks']}); flaps "
        f"{s['flaps']}; most pages per alert per incident {s['most_pages_per_alert_per_incident']}."
    )
    lines += ["", *_render_paging(report)]
    return "\n".join(lines)


def _render_paging(report: Report) -> list[str]:
    """Notifications per incident: one per firing (before), the bridge's pages (after)."""
    lines = [
        "Notifications per incident: before, one per firing after inhibition; after, the bridge's"
        " pages (an incident opening or rising in severity; its resolve counted apart).",
        "",
        "| incident | firings (before) | pages (after) | pages by severity | resolves |"
        " bridge incidents | probable cause |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.incidents:
        tiers = ", ".join(f"{k} {n}" for k, n in r.pages_by_severity.items()) or "—"
        lines.append(
            f"| {r.name} | {r.firings} | {r.pages} | {tiers} | {r.resolves} |"
            f" {r.bridge_incidents} | {', '.join(r.probable_cause) or '—'} |"
        )
    s = report.summary
    outside = ", ".join(f"{k} {n}" for k, n in report.bridge_outside.items()) or "none"
    lines += [
        "",
        f"Within incidents: {s['firings_in_incidents']} firings, {s['bridge_pages_in_incidents']}"
        f" bridge pages and {s['bridge_resolves_in_incidents']} resolves; most per incident "
        f"{s['most_firings_per_incident']} firings, {s['most_bridge_pages_per_incident']} pages, "
        f"{s['most_bridge_pages_per_severity_per_incident']} of one severity. Outside incidents: "
        f"{s['firings_outside_incidents']} firings, {s['bridge_pages_outside_incidents']} bridge"
        f" pages ({outside}).",
    ]
    return lines


# (summary key, label, how the worst of several seeds is taken)
SEED_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("detected", "detected", "min"),
    ("median_time_to_detect_seconds", "median s", "max"),
    ("max_time_to_detect_seconds", "worst s", "max"),
    ("pages_in_calm_weeks", "calm pages", "max"),
    ("flaps", "flaps", "max"),
    ("most_pages_per_alert_per_incident", "pages/alert/incident", "max"),
    ("most_bridge_pages_per_severity_per_incident", "bridge pages/severity/incident", "max"),
)


def worst_of(summaries: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The worst value of each column over the seeds (fewest detected, slowest, most pages),
    and which seed had it."""
    worst: dict[str, Any] = {}
    for key, _, how in SEED_COLUMNS:
        values = {seed: s.get(key) for seed, s in summaries.items() if s.get(key) is not None}
        if not values:
            continue
        pick = min if how == "min" else max
        seed = pick(values, key=lambda k: values[k])
        worst[key] = {"value": values[seed], "seed": seed}
    return worst


def render_seeds(summaries: dict[int, dict[str, Any]]) -> str:
    """One row per seed and the worst of them, as a Markdown table."""
    header = ["seed", *(label for _, label, _ in SEED_COLUMNS)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for seed, s in summaries.items():
        cells = [str(seed)]
        for key, _, _ in SEED_COLUMNS:
            value = s.get(key)
            if key == "detected":
                value = f"{value}/{s.get('incidents')}"
            cells.append("-" if value is None else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    worst = worst_of(summaries)
    cells = ["worst"]
    for key, _, _ in SEED_COLUMNS:
        w = worst.get(key)
        cells.append("-" if w is None else f"{w['value']} (seed {w['seed']})")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
