"""One ``route`` label value per route, whichever framework named it.

aiohttp's ``{id}`` (and ``{id:\\d+}``), Next.js's ``[id]`` are written ``:id``; catch-alls
(aiohttp ``{tail:.*}``, Next.js ``[...slug]`` / ``[[...slug]]``, Express 5 ``*splat``) are written
``*``; Next.js ``(group)`` folders are left out. The TypeScript client's ``normalizeRoute`` does
the same, so ``/api/donations/{id}``, ``/api/donations/[id]`` and ``/api/donations/:id`` are one
series.
"""

from __future__ import annotations

import re

__all__ = ["normalize_route"]

_NEXT_OPTIONAL_CATCH_ALL = re.compile(r"\[\[\.\.\.[^\]/]*\]\]")
_NEXT_CATCH_ALL = re.compile(r"\[\.\.\.[^\]/]*\]")
_NEXT_DYNAMIC = re.compile(r"\[([^\]/]+)\]")
_EXPRESS_OPTIONAL_WILDCARD = re.compile(r"\{/\*[^}/]*\}")
_EXPRESS_NAMED_WILDCARD = re.compile(r"\*[A-Za-z_$][\w$]*")
_AIOHTTP_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::((?:[^{}]|\{[^{}]*\})*))?\}")
_NEXT_GROUP = re.compile(r"/\([^)/]+\)(?=/|$)")
_CATCH_ALL_PATTERNS = frozenset({".*", ".+", "(.*)", "(.+)"})


def _aiohttp_variable(match: re.Match[str]) -> str:
    pattern = match.group(2)
    return "*" if pattern in _CATCH_ALL_PATTERNS else ":" + match.group(1)


def normalize_route(route: str) -> str:
    """The route template in the exporter's one form: ``:param``, ``*`` for a catch-all."""
    if not isinstance(route, str):
        return route
    out = _NEXT_OPTIONAL_CATCH_ALL.sub("*", route)
    out = _NEXT_CATCH_ALL.sub("*", out)
    out = _NEXT_DYNAMIC.sub(r":\1", out)
    out = _EXPRESS_OPTIONAL_WILDCARD.sub("/*", out)
    out = _AIOHTTP_VARIABLE.sub(_aiohttp_variable, out)
    out = _EXPRESS_NAMED_WILDCARD.sub("*", out)
    out = _NEXT_GROUP.sub("", out)
    return "/" if out == "" and route != "" else out
