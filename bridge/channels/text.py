"""Rendering helpers the channels share: escaping, truncation, GSM-7, safe links."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from bridge.model import Alert, Message

ELLIPSIS = "…"

# Labels shown in every channel's alert line; the rest only in the detailed views.
KEY_LABELS = ("severity", "category", "organization_id")
# Labels that add nothing to a human reading the message.
HIDDEN_LABELS = frozenset({"alertname", "__name__"})


def truncate(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``ellipsis`` when cut."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return text[:limit]
    return text[: limit - len(ellipsis)] + ellipsis


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,4}$")


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters as entities, so no ``<!channel>``, ``<@U…>`` or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def truncate_escaped(text: str, limit: int, ellipsis: str = ELLIPSIS) -> str:
    """Truncate already-escaped mrkdwn without cutting an ``&amp;``-style entity in half."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ellipsis), 0)]
    partial = _PARTIAL_ENTITY.search(cut)
    if partial:
        cut = cut[: partial.start()]
    return cut + ellipsis


def one_line(text: str) -> str:
    """Whitespace (newlines included) collapsed to single spaces."""
    return " ".join(text.split())


def safe_url(url: str) -> str | None:
    """The URL when it is an absolute http(s) URL without whitespace, else None."""
    if not url or any(c.isspace() for c in url) or any(ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return url


def format_time(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def alert_headline(alert: Alert) -> str:
    """One line naming the alert: its summary, with the organization when there is one."""
    text = one_line(alert.summary) or alert.alertname or "alert"
    if alert.organization_id and alert.organization_id not in text:
        text = f"{text} ({alert.organization_id})"
    if alert.status == "resolved":
        text = f"RESOLVED: {text}"
    return text


def detail_labels(alert: Alert) -> list[tuple[str, str]]:
    """Labels worth showing: the key labels first, then the rest sorted, alertname hidden."""
    shown = [(k, alert.labels[k]) for k in KEY_LABELS if alert.labels.get(k)]
    rest = sorted(
        (k, v) for k, v in alert.labels.items() if k not in KEY_LABELS and k not in HIDDEN_LABELS
    )
    return shown + rest


def message_intro(message: Message) -> str:
    """The plain-text first lines every channel shows: title and the bridge's notice."""
    lines = [message.title]
    if message.notice:
        lines.append(one_line(message.notice))
    return "\n".join(lines)


# The GSM 03.38 default alphabet and its extension table (extension characters cost two septets).
_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = "^{}\\[~]|€\f"
_GSM7 = frozenset(_GSM7_BASIC + _GSM7_EXTENSION)


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` can be sent in the GSM-7 encoding."""
    return all(c in _GSM7 for c in text)


def gsm7_septets(text: str) -> int:
    """Septets ``text`` needs in GSM-7 (extension characters count twice)."""
    return sum(2 if c in _GSM7_EXTENSION else 1 for c in text)


def render_plain(message: Message, *, width_limit: int = 4000) -> str:
    """A readable multi-line text of the whole message (e-mail text part, console)."""
    lines = [message.title]
    if message.notice:
        lines += ["", one_line(message.notice)]
    for number, alert in enumerate(message.alerts, 1):
        lines += ["", f"{number}. {alert_headline(alert)}"]
        if alert.description:
            lines.append(f"   {truncate(one_line(alert.description), width_limit)}")
        labels = ", ".join(f"{k}={v}" for k, v in detail_labels(alert))
        if labels:
            lines.append(f"   Labels: {truncate(labels, width_limit)}")
        lines.append(f"   Started: {format_time(alert.starts_at)}")
        if alert.status == "resolved" and alert.ends_at:
            lines.append(f"   Resolved: {format_time(alert.ends_at)}")
        for label, url in (("Graph", alert.generator_url), ("Runbook", alert.runbook_url)):
            if safe_url(url):
                lines.append(f"   {label}: {url}")
    if safe_url(message.external_url):
        lines += ["", f"Alertmanager: {message.external_url}"]
    return "\n".join(lines) + "\n"
