"""The history: filters, text search, keyset pages, CSV export."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from bridge.model import CATEGORIES, SEVERITIES
from bridge.storage.console import (
    STATUSES,
    Cursor,
    HistoryFilter,
)
from bridge.webhook import clean_text
from console.common import (
    CSV_MAX_ROWS,
    PAGE_SIZE,
    _audit,
    _console,
    _visitor,
    render,
)


def _parse_time(value: str, name: str) -> datetime | None:
    value = value.strip()
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"{name}: expected a date like 2026-03-01 or 2026-03-01T09:00"
        ) from None
    try:
        # in UTC: an offset can push year 1 or 9999 out of range (OverflowError)
        return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except OverflowError:
        raise web.HTTPBadRequest(text=f"{name}: out of range") from None


def _history_filter(query: Any) -> HistoryFilter:
    categories = tuple(c for c in query.getall("category", []) if c)
    bad = [c for c in categories if c not in CATEGORIES]
    severity, status = query.get("severity", ""), query.get("status", "")
    if bad:
        raise web.HTTPBadRequest(text=f"unknown category {bad[0][:40]!r}")
    if severity and severity not in SEVERITIES:
        raise web.HTTPBadRequest(text=f"severity must be one of {', '.join(SEVERITIES)}")
    if status and status not in STATUSES:
        raise web.HTTPBadRequest(text="status must be firing or resolved")
    return HistoryFilter(
        categories=categories,
        severity=severity,
        organization_id=clean_text(query.get("org", "").strip()[:128]),
        alertname=clean_text(query.get("alertname", "").strip()[:128]),
        status=status,
        since=_parse_time(query.get("since", ""), "since"),
        until=_parse_time(query.get("until", ""), "until"),
        text=clean_text(query.get("q", "").strip()[:200]),
    )


async def history_page(request: web.Request) -> web.StreamResponse:
    console = _console(request)
    user = _visitor(request).user
    assert user is not None
    where = replace(_history_filter(request.query), within=user.organizations)
    cursor = None
    if request.query.get("after"):
        try:
            cursor = Cursor.decode(request.query["after"])
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
    if request.query.get("format") == "csv":
        return await _history_csv(request, where)
    rows = await console.store.history(where, cursor, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    acks = await console.store.acknowledgements([a.instance for a in rows])
    params = [(k, v) for k, v in request.query.items() if k not in ("after", "notice")]
    next_url = ""
    if more:
        last = rows[-1]
        next_cursor = Cursor(last.starts_at, last.table, last.id).encode()
        next_url = f"?{urlencode([*params, ('after', next_cursor)])}"
    csv_url = f"?{urlencode([*params, ('format', 'csv')])}"
    return render(
        request,
        "history.html",
        rows=rows,
        acks=acks,
        next_url=next_url,
        csv_url=csv_url,
        first_url=f"?{urlencode(params)}" if cursor else "",
        where=where,
        categories=CATEGORIES,
        severities=SEVERITIES,
        statuses=STATUSES,
    )


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells starting with these as formulas (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


async def _history_csv(request: web.Request, where: HistoryFilter) -> web.StreamResponse:
    console = _console(request)
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="passiton-alerts.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        }
    )
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "starts_at",
            "ends_at",
            "status",
            "severity",
            "category",
            "alertname",
            "organization_id",
            "summary",
            "fingerprint",
            "acknowledged_by",
        ]
    )
    cursor: Cursor | None = None
    written = 0
    while written < CSV_MAX_ROWS:
        rows = await console.store.history(where, cursor, 1000)
        if not rows:
            break
        acks = await console.store.acknowledgements([a.instance for a in rows])
        for a in rows:
            ack = acks.get(a.instance)
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        a.starts_at.isoformat(),
                        a.ends_at.isoformat() if a.ends_at else "",
                        a.status,
                        a.severity,
                        a.category,
                        a.alertname,
                        a.organization_id or "",
                        a.summary,
                        a.fingerprint,
                        ack.username if ack else "",
                    )
                ]
            )
        written += len(rows)
        await response.write(buffer.getvalue().encode())
        buffer.seek(0)
        buffer.truncate()
        last = rows[-1]
        cursor = Cursor(last.starts_at, last.table, last.id)
    await console.store.audit(_audit(request, "exported history", rows=written))
    await response.write_eof()
    return response
