"""Route templates: ids in raw paths become ``:id``."""

from __future__ import annotations

import re
from functools import lru_cache

# Outside text is cut before the classifier sees it, so that it costs a bounded time
# (docs/security.md; benchmarks/adversarial_inputs.py measures the worst cases).
ROUTE_MAX = 256

_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}"
    r"|[a-z]+_[A-Za-z0-9]{14,})$",
    re.I | re.ASCII,
)
_SLUG = re.compile(r"[A-Za-z0-9_-]{11,}", re.ASCII)
_DIGITS = frozenset("0123456789")


def _is_id(segment: str) -> bool:
    """An id-like path segment. Each test is linear: the slug rule (at least 11 characters of
    ``[A-Za-z0-9_-]`` with a digit followed by at least 10 more) is a character check, not the
    backtracking ``[A-Za-z0-9_-]*\\d[A-Za-z0-9_-]{10,}`` it replaces."""
    if _ID_SEGMENT.match(segment):
        return True
    return bool(_SLUG.fullmatch(segment)) and not _DIGITS.isdisjoint(segment[:-10])


@lru_cache(maxsize=8192)
def route_template(route: str) -> str:
    """Keep a template as given (`/orgs/{id}`, `/orgs/:id`); turn ids in raw paths into `:id`."""
    path = route[:ROUTE_MAX].split("?", 1)[0].split("#", 1)[0].strip() or "/"
    if not path.startswith("/"):
        path = "/" + path
    segments = [":id" if _is_id(s) else s for s in path.split("/")]
    return "/".join(segments)[:128]
