"""Run the exporter until SIGTERM/SIGINT; aiohttp finishes in-flight requests on the way out."""

from __future__ import annotations

import logging

from aiohttp import web

from exporter.app import create_app
from exporter.config import ExporterConfig

log = logging.getLogger("exporter")


def run(config: ExporterConfig, host: str, port: int) -> None:
    app = create_app(config)
    log.info("exporter listening", extra={"host": host, "port": port})
    web.run_app(app, host=host, port=port, access_log=None, print=None, shutdown_timeout=10)
