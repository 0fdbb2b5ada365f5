"""The Grafana dashboards, as code: ``grafana/dashboards/*.json`` is generated from
``grafana/dashboards_src/`` (one module a dashboard, the building blocks in ``panels.py``).

    python grafana/build_dashboards.py          # rewrite grafana/dashboards/*.json
    python grafana/build_dashboards.py --check  # exit 1 when the JSON differs from the sources

Every panel gets a title, a description and a unit, queries the ``${datasource}`` variable, and
takes rates over ``$__rate_interval``. Where ``prometheus/rules/*.yml`` records a series (ratios,
baselines, thresholds, SLO windows) the panels read the recorded series, so a dashboard shows
exactly what the alerts compare.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

if not __package__:  # run as `python grafana/build_dashboards.py`: make `grafana.*` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grafana.dashboards_src import DASHBOARDS

__all__ = ["DASHBOARDS", "OUT_DIR", "main", "render", "stale"]

OUT_DIR = Path(__file__).resolve().parent / "dashboards"


def render() -> dict[str, str]:
    """Each dashboard file name and its JSON text."""
    return {
        name: json.dumps(build(), indent=2, sort_keys=False) + "\n"
        for name, build in DASHBOARDS.items()
    }


def stale(out_dir: Path = OUT_DIR) -> list[str]:
    expected = render()
    present = {p.name for p in out_dir.glob("*.json")}
    changed = [
        name
        for name, text in expected.items()
        if not (out_dir / name).exists() or (out_dir / name).read_text(encoding="utf-8") != text
    ]
    return sorted(changed + sorted(present - set(expected)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate grafana/dashboards/*.json.")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"grafana/dashboards/{name} is out of date", file=sys.stderr)
        return 1 if names else 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in render().items():
        (OUT_DIR / name).write_text(text, encoding="utf-8")
        print(f"wrote grafana/dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
