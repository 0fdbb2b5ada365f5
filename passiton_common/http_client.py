"""Outgoing HTTP: every httpx client of a process shares one TLS context.

httpx builds a new ``ssl.SSLContext`` for each client and loads the CA bundle into it: 30 ms of
CPU a client. The bridge holds one per channel, the console two, and each command or check opens
its own; a test suite that starts hundreds of bridges spent a minute of CPU re-reading the
bundle. The context is built once, the way httpx builds it (``SSL_CERT_FILE`` and
``SSL_CERT_DIR`` are read then, as httpx reads them), and is safe to share between clients.
"""

from __future__ import annotations

import ssl
from functools import cache
from typing import Any

import httpx


@cache
def tls_context() -> ssl.SSLContext:
    """The process's one verifying client context (certifi's bundle unless the environment
    names another)."""
    return httpx.create_ssl_context()


def async_client(**options: Any) -> httpx.AsyncClient:
    """``httpx.AsyncClient(**options)`` on the shared TLS context (unless ``verify`` is given)."""
    options.setdefault("verify", tls_context())
    return httpx.AsyncClient(**options)
