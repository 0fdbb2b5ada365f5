"""Docker Compose variants of ``prometheus/prometheus.yml`` and ``alertmanager/alertmanager.yml``.

The repository's configs are the one source of truth and name every service as
``localhost:<default port>``, which is right on one machine (``passiton-monitoring up``) and
wrong inside Compose, where each service is reached by its service name. Neither Prometheus nor
Alertmanager can take targets or receiver URLs from flags or the environment, so the Compose
files are rendered from the sources with the same code ``up`` uses
(``passiton_monitoring.stack``), and committed under ``deploy/compose/``;
``tests/test_compose.py`` fails when they are out of date.

    python -m deploy.render_compose          # rewrite deploy/compose/*.yml
    python -m deploy.render_compose --check  # exit 1 when they differ from the sources
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from passiton_monitoring.stack.ports import Addresses
from passiton_monitoring.stack.render import render_alertmanager, render_prometheus

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = Path("deploy/compose")

# Service names and ports of docker-compose.yml.
COMPOSE_ADDRESSES = Addresses(
    exporter="exporter:9820",
    bridge=("bridge:9821",),
    prometheus="prometheus:9090",
    alertmanager=("alertmanager:9093",),
    blackbox="blackbox:9115",
)
# Where docker-compose.yml mounts the bridge's webhook token (a Compose secret).
TOKEN_FILE = Path("/run/secrets/bridge_webhook_token")
PROMETHEUS_SOURCE = Path("prometheus/prometheus.yml")
ALERTMANAGER_SOURCE = Path("alertmanager/alertmanager.yml")


class _Dumper(yaml.SafeDumper):
    """Writes repeated parts (the source's YAML anchors) out in full: easier to read."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def _dump(data: dict, source: Path) -> str:
    header = (
        f"# Rendered from {source} for docker-compose.yml by `python -m deploy.render_compose`:\n"
        f"# edit {source}, then run that command. Services are reached by their Compose names.\n"
    )
    return header + yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=100)


def render(root: Path = ROOT) -> dict[Path, str]:
    """Each Compose config file (relative to ``root``) and its text."""
    prometheus = render_prometheus(root / PROMETHEUS_SOURCE, COMPOSE_ADDRESSES)
    # Rule files stay relative: the container mounts prometheus/rules next to the config.
    with (root / PROMETHEUS_SOURCE).open(encoding="utf-8") as f:
        prometheus["rule_files"] = yaml.safe_load(f).get("rule_files") or []
    alertmanager = render_alertmanager(root / ALERTMANAGER_SOURCE, COMPOSE_ADDRESSES, TOKEN_FILE)
    return {
        OUT_DIR / "prometheus.yml": _dump(prometheus, PROMETHEUS_SOURCE),
        OUT_DIR / "alertmanager.yml": _dump(alertmanager, ALERTMANAGER_SOURCE),
    }


def stale(root: Path = ROOT) -> list[Path]:
    """The rendered files whose committed text differs from a fresh rendering."""
    out = []
    for path, text in render(root).items():
        target = root / path
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            out.append(path)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        paths = stale()
        for path in paths:
            print(f"{path} is out of date: run python -m deploy.render_compose", file=sys.stderr)
        return 1 if paths else 0
    for path, text in render().items():
        (ROOT / path).parent.mkdir(parents=True, exist_ok=True)
        (ROOT / path).write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
