"""Rows of the console's queries: the alert columns (times clamped into Python's range) and the
decoding of alert, delivery and audit rows, shared by ``console_queries.py`` and
``console_incidents.py``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from bridge.codec import decode_json, encode_json
from bridge.storage.console import AlertRow, AuditEntry, DeliveryRow


def shown_time(column: str) -> str:
    """A timestamp column clamped into Python's range: a row holding ``infinity`` or a BC date
    (the webhook refuses them now; older rows, manual edits) must not make a page a 500."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL ELSE LEAST(GREATEST({column},"
        f" '0001-01-02T00:00:00Z'::timestamptz), '9999-12-30T00:00:00Z'::timestamptz) END"
        f" AS {column}"
    )


ALERT_COLUMNS = (
    "id, fingerprint, alertname, status, severity, organization_id, summary, description,"
    " labels::text, annotations::text, generator_url, "
    + ", ".join(shown_time(c) for c in ("starts_at", "ends_at", "received_at", "updated_at"))
    + ", incident_id"
)


def alert_row(table: str, r: Any) -> AlertRow:
    """An alert from ``ALERT_COLUMNS`` (in that order)."""
    return AlertRow(
        table,
        *r[:8],
        decode_json(r[8]) or {},
        decode_json(r[9]) or {},
        *r[10:15],
        incident_id=r[15],
    )


def like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def delivery_row(r: Any) -> DeliveryRow:
    message = decode_json(r[8]) or {}
    starts = {
        a["fingerprint"]: datetime.fromisoformat(a["starts_at"])
        for a in message.get("alerts", ())
        if "fingerprint" in a and "starts_at" in a
    }
    return DeliveryRow(
        r[0],
        r[1],
        r[2],
        r[3],
        r[4],
        r[5],
        r[6],
        r[7],
        message.get("status", ""),
        message.get("notice", ""),
        starts,
    )


async def insert_audit(conn: asyncpg.Connection, entry: AuditEntry) -> None:
    await conn.execute(
        "INSERT INTO console_audit (at, username, action, fingerprint, starts_at, detail)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        entry.at,
        entry.username,
        entry.action,
        entry.fingerprint,
        entry.starts_at,
        encode_json(entry.detail),
    )


def audit_row(r: Any) -> AuditEntry:
    return AuditEntry(r[0], r[1], r[2], r[3], r[4], decode_json(r[5]) or {})
