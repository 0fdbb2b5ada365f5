"""Reaching PostgreSQL: the URL (Supabase's pooler detected), which errors mean "the database is
not there right now" (``StorageUnavailable``, answered 503 and retried) rather than a bad query."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from bridge.storage.types import StorageUnavailable

# SQLSTATE classes meaning "the database is not there right now", as opposed to a bad query.
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P", "3D000", "55000", "55006")


def check_url(url: str) -> str:
    """``url`` when it names PostgreSQL; otherwise an error that says what to use instead."""
    if url.startswith(("postgres://", "postgresql://")):
        return url
    if url.startswith("sqlite:"):
        raise ValueError(
            "DATABASE_URL: SQLite is no longer supported; set a postgresql:// URL (Supabase "
            "included), or unset DATABASE_URL for the embedded PostgreSQL in PASSITON_STATE_DIR"
        )
    raise ValueError("DATABASE_URL must start with postgresql:// (or be unset: embedded)")


def pooler_dsn(url: str) -> tuple[str, bool]:
    """The DSN for asyncpg without bridge-only parameters, and whether a pooler is in front."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    pooled = parts.port == 6543
    kept = []
    for key, value in query:
        if key.lower() == "pgbouncer":
            pooled = pooled or value.lower() in ("1", "true", "yes", "on")
        else:
            kept.append((key, value))
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment)), pooled


def is_unavailable(exc: BaseException) -> bool:
    if isinstance(
        exc,
        OSError
        | TimeoutError
        | asyncpg.exceptions.InterfaceError
        | asyncpg.exceptions.InternalClientError,
    ):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = getattr(exc, "sqlstate", "") or ""
        return state.startswith(_UNAVAILABLE_SQLSTATES)
    return False


@asynccontextmanager
async def translated() -> AsyncIterator[None]:
    """Re-raise "the database is not there" as ``StorageUnavailable``; anything else as is."""
    try:
        yield
    except StorageUnavailable:
        raise
    except Exception as exc:
        if is_unavailable(exc):
            raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc
        raise
