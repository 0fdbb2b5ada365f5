"""The ``passiton-monitoring`` console script: one subcommand per service or task."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.beacon_keys import beacon_key
from exporter.config import ExporterConfig
from exporter.server import run
from passiton_common.logs import setup_logging
from passiton_common.settings import listen_argument, read_text
from passiton_common.variables import default_of
from passiton_monitoring.bridge_process import COMMANDS
from passiton_monitoring.stack import up


def _cmd_exporter(args: argparse.Namespace) -> int:
    try:
        config = ExporterConfig.from_env(os.environ)
        if args.dev:
            config = dataclasses.replace(config, development=True)
        config.check_startable()
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    internal = args.listen or (config.listen_host, config.listen_port)
    public = args.public_listen or (config.public_listen_host, config.public_listen_port)
    run(config, internal, public)
    return 0


def _cmd_beacon_key(args: argparse.Namespace) -> int:
    try:
        secret = ExporterConfig.from_env(os.environ).beacon_secret
    except ValueError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if not secret:
        print("configuration error: EXPORTER_BEACON_SECRET must be set", file=sys.stderr)
        return 2
    print(beacon_key(secret, args.organization, args.widget))
    return 0


def _cmd_up(args: argparse.Namespace) -> int:

    return up(args, os.environ)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="passiton-monitoring",
        description="PassItOn monitoring: Prometheus exporter and Alertmanager bridge.",
    )
    parser.add_argument("--log-level", default=read_text(os.environ, "LOG_LEVEL"))
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("exporter", help="run the exporter (application signals -> /metrics)")
    p.add_argument(
        "--listen",
        type=listen_argument,
        metavar="HOST:PORT",
        help=f"internal listener: /v1/events, /metrics (default {default_of('EXPORTER_LISTEN')})",
    )
    p.add_argument(
        "--public-listen",
        type=listen_argument,
        metavar="HOST:PORT",
        help="public listener: beacon, Stripe webhook"
        f" (default {default_of('EXPORTER_PUBLIC_LISTEN')})",
    )
    p.add_argument(
        "--dev",
        action="store_true",
        help="local development run: /v1/events without EXPORTER_INGEST_TOKEN",
    )
    p.set_defaults(func=_cmd_exporter)

    p = sub.add_parser(
        "beacon-key", help="print the beacon key of a widget (needs EXPORTER_BEACON_SECRET)"
    )
    p.add_argument("--organization", required=True, metavar="ORG")
    p.add_argument("--widget", required=True, metavar="WIDGET")
    p.set_defaults(func=_cmd_beacon_key)

    p = sub.add_parser("up", help="run the whole stack on this machine (exporter, bridge, ...)")
    p.add_argument("--demo", action="store_true", help="also generate demo traffic with bursts")
    p.add_argument(
        "--base-port", type=int, metavar="N", help="ports N..N+5 instead of the defaults"
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
