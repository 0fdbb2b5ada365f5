"""The ``passiton-monitoring`` console script: one subcommand per service or task."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bridge.commands import COMMANDS
from exporter.config import ExporterConfig
from exporter.server import run
from passiton_common.logs import setup_logging
from passiton_common.settings import listen_argument
from passiton_monitoring.stack import up


def _cmd_exporter(args: argparse.Namespace) -> int:

    config = ExporterConfig.from_env(os.environ)
    host, port = args.listen or (config.listen_host, config.listen_port)
    run(config, host, port)
    return 0


def _cmd_up(args: argparse.Namespace) -> int:

    return up(args, os.environ)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="passiton-monitoring",
        description="PassItOn monitoring: Prometheus exporter and Alertmanager bridge.",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("exporter", help="run the exporter (application signals -> /metrics)")
    p.add_argument(
        "--listen", type=listen_argument, metavar="HOST:PORT", help="default 0.0.0.0:9820"
    )
    p.set_defaults(func=_cmd_exporter)

    p = sub.add_parser("up", help="run the whole stack on this machine (exporter, bridge, ...)")
    p.add_argument("--demo", action="store_true", help="also generate demo traffic with bursts")
    p.add_argument(
        "--base-port", type=int, metavar="N", help="ports N..N+3 instead of the defaults"
    )
    p.add_argument("--fast", action="store_true", help="1s scrape/evaluation/grouping (tests)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--config-dir", type=Path, help="checkout with prometheus/ and alertmanager/")
    p.set_defaults(func=_cmd_up)

    for name, (help_text, configure, func) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        configure(p)
        p.set_defaults(func=func)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
