"""make backtest: replay synthetic weeks through the exporter and the rules, report how they page.

python -m backtest                       # 14 calm days + 3 days of incidents
python -m backtest --days 2 --incident-days 1 --warmup 3h
python -m backtest --json report.json --keep-work /tmp/backtest
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import yaml

from backtest.alerts import Episode, duration, evaluate
from backtest.inhibit import load_inhibit_rules, pages
from backtest.paging import bridge_pages
from backtest.report import Report, render, render_seeds, score, worst_of
from backtest.scenario import DAY, Incident, incidents
from backtest.simulate import Platform, replay, series_names_read_by_rules
from backtest.tsdb import (
    Importer,
    Prometheus,
    backfill_recording_rules,
    drop_recorded_series,
    rule_groups,
)

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "prometheus" / "rules"
ALERTMANAGER = ROOT / "alertmanager" / "alertmanager.yml"
# Monday 2026-01-05 00:00 UTC: the replay's first day (the weekly seasonality starts on a Monday).
ORIGIN = 1_767_571_200


def evaluate_alerts(
    prometheus: Prometheus,
    rule_files: list[Path],
    start: int,
    end: int,
    alertmanager: Path | None = ALERTMANAGER,
) -> list[Episode]:
    """Every firing of the alert rules; with ``alertmanager``, as its inhibit rules let them
    page (inhibited firings dropped, or paging when their inhibition ends)."""
    found: list[Episode] = []
    for group in rule_groups(rule_files):
        for rule in group["rules"]:
            if "alert" in rule:
                found.extend(evaluate(prometheus, rule, start, end))
    if alertmanager is not None:
        found = pages(found, load_inhibit_rules(alertmanager))
    return found


def _history_stamp(
    days: int, incident_days: int, step: int, seed: int, keep: frozenset[str]
) -> dict[str, object]:
    """What a simulated history depends on: the scenario, the simulation and exporter code."""
    digest = hashlib.sha256()
    sources = [ROOT / "backtest" / "scenario.py", ROOT / "backtest" / "simulate.py"]
    for path in [*sources, *sorted((ROOT / "exporter").glob("*.py"))]:
        digest.update(path.read_bytes())
    return {
        "days": days,
        "incident_days": incident_days,
        "step": step,
        "seed": seed,
        "series": sorted(keep),
        "code": digest.hexdigest(),
    }


def run(
    days: int = 16,
    incident_days: int = 2,
    step: int = 60,
    warmup: int = DAY,
    work: Path | None = None,
    rule_files: list[Path] | None = None,
    seed: int = 7,
    history: Path | None = None,
    log: Callable[[str], None] = lambda _: None,
    alertmanager: Path | None = ALERTMANAGER,
) -> tuple[Report, list[Episode]]:
    """The whole backtest: simulate, backfill, evaluate, score."""
    if not 0 < incident_days < days:
        raise ValueError("incident days must be at least 1 and fewer than all days")
    if DAY % step:
        raise ValueError("the step must divide a day")
    rule_files = rule_files or sorted(RULES.glob("*.yml"))
    calm_days = days - incident_days
    seeded = incidents(calm_days, incident_days)
    # what the rules under test and this repository's rules read (so that one simulated history
    # serves a comparison of both)
    keep = series_names_read_by_rules(
        [p.read_text() for p in [*rule_files, *sorted(RULES.glob("*.yml"))]]
    )
    owned = work is None
    work = Path(tempfile.mkdtemp(prefix="backtest-")) if work is None else work
    if work.exists():
        shutil.rmtree(work)
    data = work / "data"
    try:
        clock = time.monotonic()
        stamp = _history_stamp(days, incident_days, step, seed, keep)
        if (
            history is not None
            and (history / "stamp.json").exists()
            and (json.loads((history / "stamp.json").read_text()) == stamp)
        ):
            shutil.copytree(history / "data", data)
            log(f"reused the simulated history in {history}")
        else:
            data.mkdir(parents=True)
            platform = Platform(ORIGIN, seeded, keep, seed=seed)
            importer = Importer(data)
            replay(platform, days, step, work / "scraped", on_day=importer.submit)
            importer.wait()
            log(f"simulated and imported {days} days in {time.monotonic() - clock:.0f}s")
            if history is not None:
                shutil.rmtree(history, ignore_errors=True)
                shutil.copytree(data, history / "data")
                (history / "stamp.json").write_text(json.dumps(stamp))
        end = ORIGIN + days * DAY - step
        prometheus = Prometheus(data, step)
        prometheus.start()
        try:
            clock = time.monotonic()
            counts = backfill_recording_rules(prometheus, rule_files, ORIGIN, end, work)
            log(
                f"recording rules: {len(counts)} levels, {sum(counts)} samples in "
                f"{time.monotonic() - clock:.0f}s"
            )
            clock = time.monotonic()
            start = ORIGIN + warmup
            found = evaluate_alerts(prometheus, rule_files, start, end, alertmanager)
            log(f"alert rules evaluated in {time.monotonic() - clock:.0f}s")
        finally:
            prometheus.stop()
        calm_until = ORIGIN + calm_days * DAY
        report = score(
            found, seeded, ORIGIN, start, end, step, calm_until, bridge_pages(found, end)
        )
        return report, found
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def load_incidents(path: Path, origin: int) -> list[Incident]:
    """Ground truth for a deployment's own history: a YAML list of
    ``{name, start: RFC 3339, duration: 30m, expected: [AlertName, ...]}``."""
    entries = yaml.safe_load(path.read_text()) or []
    return [
        Incident(
            name=str(e["name"]),
            category=str(e.get("category", "")),
            start=int(_timestamp(str(e["start"]))) - origin,
            duration=int(duration(str(e["duration"]))),
            expected=tuple(e["expected"]),
        )
        for e in entries
    ]


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def run_history(
    tsdb: Path,
    start: int,
    end: int,
    incidents_file: Path,
    step: int = 15,
    work: Path | None = None,
    rule_files: list[Path] | None = None,
    log: Callable[[str], None] = lambda _: None,
    alertmanager: Path | None = ALERTMANAGER,
) -> tuple[Report, list[Episode]]:
    """The rules under test over a copy of a deployment's TSDB (a snapshot's directory): its
    recorded series are dropped, the recording rules backfilled, the alert rules evaluated."""
    rule_files = rule_files or sorted(RULES.glob("*.yml"))
    owned = work is None
    work = Path(tempfile.mkdtemp(prefix="backtest-")) if work is None else work
    shutil.rmtree(work, ignore_errors=True)
    try:
        shutil.copytree(tsdb, work / "data")
        prometheus = Prometheus(work / "data", step, lookback=2 * step, admin=True)
        prometheus.start()
        try:
            drop_recorded_series(prometheus)
            counts = backfill_recording_rules(prometheus, rule_files, start, end, work)
            log(f"recording rules: {len(counts)} levels, {sum(counts)} samples")
            found = evaluate_alerts(prometheus, rule_files, start, end, alertmanager)
        finally:
            prometheus.stop()
        seeded = load_incidents(incidents_file, start)
        return score(found, seeded, start, start, end, step, end, bridge_pages(found, end)), found
    finally:
        if owned:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m backtest",
        description="Replay synthetic traffic with seeded incidents through the exporter and the "
        "alert rules; report detection times, pages outside incidents and flaps.",
    )
    parser.add_argument("--days", type=int, default=16, help="days replayed (default 16)")
    parser.add_argument(
        "--incident-days", type=int, default=2, help="last days, with the seeded incidents"
    )
    parser.add_argument("--step", default="60s", help="scrape and evaluation interval (60s)")
    parser.add_argument("--warmup", default="1d", help="history before alerts are evaluated")
    parser.add_argument("--rules", type=Path, default=RULES, help="directory of rule files")
    parser.add_argument(
        "--alertmanager",
        type=Path,
        default=ALERTMANAGER,
        help="Alertmanager config whose inhibit rules decide what pages (default: this repo's)",
    )
    parser.add_argument(
        "--no-inhibit", action="store_true", help="score every firing, inhibited or not"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="replay N random draws (seeds --seed, --seed+1, ...): each seed's summary and the "
        "worst of them (each seed's history cached in --history/seed-N)",
    )
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--keep-work", type=Path, help="keep the TSDB and files in this directory")
    parser.add_argument(
        "--history",
        type=Path,
        help="cache of the simulated history: reused while the scenario and code are unchanged",
    )
    parser.add_argument(
        "--tsdb",
        type=Path,
        help="replay a deployment's own history instead: a copy of its TSDB (snapshot) directory; "
        "needs --start, --end and --incidents",
    )
    parser.add_argument("--start", help="RFC 3339 start of the deployment's history to replay")
    parser.add_argument("--end", help="RFC 3339 end")
    parser.add_argument("--incidents", type=Path, help="YAML ground truth of its incidents")
    args = parser.parse_args(argv)
    clock = time.monotonic()
    if args.tsdb:
        if not (args.start and args.end and args.incidents):
            parser.error("--tsdb needs --start, --end and --incidents")
        report, _ = run_history(
            args.tsdb,
            int(_timestamp(args.start)),
            int(_timestamp(args.end)),
            args.incidents,
            step=int(duration(args.step)) if args.step != "60s" else 15,
            work=args.keep_work,
            rule_files=sorted(args.rules.glob("*.yml")),
            log=lambda line: print(line, file=sys.stderr, flush=True),
            alertmanager=None if args.no_inhibit else args.alertmanager,
        )
        print(render(report))
        return 0
    seeds = [args.seed + i for i in range(max(1, args.seeds))]
    reports = {}
    for seed in seeds:
        history = args.history
        if history is not None and len(seeds) > 1:
            history = history / f"seed-{seed}"
        report, _ = run(
            days=args.days,
            incident_days=args.incident_days,
            step=int(duration(args.step)),
            warmup=int(duration(args.warmup)),
            work=args.keep_work,
            rule_files=sorted(args.rules.glob("*.yml")),
            seed=seed,
            history=history,
            log=lambda line: print(line, file=sys.stderr, flush=True),
            alertmanager=None if args.no_inhibit else args.alertmanager,
        )
        reports[seed] = report
        print(render(report) if len(seeds) == 1 else f"\n## seed {seed}\n\n{render(report)}")
    print(f"\n(backtest took {time.monotonic() - clock:.0f}s)", file=sys.stderr)
    summaries = {seed: r.summary for seed, r in reports.items()}
    if len(seeds) > 1:
        print("\n" + render_seeds(summaries))
    if args.json:
        if len(seeds) == 1:
            document = reports[seeds[0]].as_dict()
        else:
            document = {
                "seeds": {str(seed): r.as_dict() for seed, r in reports.items()},
                "worst": worst_of(summaries),
            }
        args.json.write_text(json.dumps(document, indent=2))
    return 0 if all(s["detected"] == s["incidents"] for s in summaries.values()) else 1
