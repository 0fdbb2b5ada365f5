"""HTTP methods and status classes."""

from __future__ import annotations

from exporter.vocab.common import OTHER

HTTP_METHODS = frozenset(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])


def method_label(method: str) -> str:
    m = method.upper()
    return m if m in HTTP_METHODS else OTHER


def status_class(status: int) -> str:
    return f"{status // 100}xx"
