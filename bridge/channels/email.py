"""E-mail through aiosmtplib: one message per notification group, text and HTML parts.

``SMTP_TLS``: ``starttls`` (plain connection upgraded, upgrade required), ``tls`` (implicit TLS
from the first byte, usually port 465) or ``none``. SMTP 4xx replies and connection problems
are transient, 5xx permanent. All recipients share one SMTP transaction; recipients the server
refused are reported in ``DeliveryError.remaining`` when others were accepted.
"""

from __future__ import annotations

import html
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

import aiosmtplib

from bridge.channels.base import DeliveryError
from bridge.channels.config import SmtpTls, is_email
from bridge.channels.text import (
    alert_headline,
    detail_labels,
    format_time,
    one_line,
    render_plain,
    safe_url,
    truncate,
)
from bridge.model import Message

MAX_SUBJECT = 200
_SEVERITY_COLOUR = {"critical": "#b00020", "high": "#d84315", "medium": "#f9a825", "low": "#1565c0"}


def render_html(message: Message) -> str:
    """The HTML part; every piece of alert text is HTML-escaped, links only to http(s) URLs."""
    e = html.escape
    parts = [
        '<!DOCTYPE html><html><body style="font-family:sans-serif">',
        f"<h2>{e(message.title)}</h2>",
    ]
    if message.notice:
        parts.append(f"<p><strong>{e(one_line(message.notice))}</strong></p>")
    for alert in message.alerts:
        colour = "#2e7d32" if alert.status == "resolved" else _SEVERITY_COLOUR[alert.severity]
        parts.append(f'<div style="border-left:4px solid {colour};padding-left:8px;margin:12px 0">')
        parts.append(f"<h3>{e(alert_headline(alert))}</h3>")
        if alert.description:
            parts.append(f"<p>{e(truncate(alert.description, 4000))}</p>")
        rows = "".join(
            f'<tr><th align="left">{e(k)}</th><td>{e(truncate(v, 500))}</td></tr>'
            for k, v in detail_labels(alert)
        )
        if rows:
            parts.append(f"<table>{rows}</table>")
        when = f"Started: {e(format_time(alert.starts_at))}"
        if alert.status == "resolved" and alert.ends_at:
            when += f" &middot; Resolved: {e(format_time(alert.ends_at))}"
        parts.append(f"<p>{when}</p>")
        links = [
            f'<a href="{e(url, quote=True)}">{label}</a>'
            for label, url in (("Graph", alert.generator_url), ("Runbook", alert.runbook_url))
            if safe_url(url)
        ]
        if links:
            parts.append(f"<p>{' | '.join(links)}</p>")
        parts.append("</div>")
    if safe_url(message.external_url):
        parts.append(f'<p><a href="{e(message.external_url, quote=True)}">Alertmanager</a></p>')
    parts.append("</body></html>")
    return "\n".join(parts)


def render_email(message: Message, sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = truncate(one_line(message.title), MAX_SUBJECT)
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain="passiton-monitoring")
    mail["X-PassItOn-Severity"] = message.severity
    mail["X-PassItOn-Status"] = message.status
    mail.set_content(render_plain(message))
    mail.add_alternative(render_html(message), subtype="html")
    return mail


class EmailNotifier:
    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: tuple[str, ...],
        tls: SmtpTls = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = recipients
        self.tls = tls
        self.username = username
        self._password = password
        self.timeout = timeout
        self.tls_context = tls_context

    def __repr__(self) -> str:
        return f"EmailNotifier(host={self.host!r}, port={self.port}, tls={self.tls!r})"

    async def notify(self, message: Message) -> None:
        recipients = tuple(r for r in (message.recipients or self.recipients) if is_email(r))
        if not recipients:
            raise DeliveryError("no valid e-mail recipient", retryable=False)
        mail = render_email(message, self.sender, recipients)
        try:
            refused, _ = await aiosmtplib.send(
                mail,
                sender=parseaddr(self.sender)[1],
                recipients=list(recipients),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self._password,
                use_tls=self.tls == "tls",
                start_tls=self.tls == "starttls",
                timeout=self.timeout,
                tls_context=self.tls_context,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = {r.recipient: (r.code, r.message) for r in exc.recipients}
            raise _refused(codes, delivered=0) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"SMTP {exc.code}: {one_line(exc.message)}", retryable=400 <= exc.code < 500
            ) from exc
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        except aiosmtplib.SMTPNotSupported as exc:
            raise DeliveryError(f"SMTP: {exc}", retryable=False) from exc
        except aiosmtplib.SMTPException as exc:
            if "not supported" in str(exc):
                # STARTTLS or AUTH configured but not offered: configuration, not a blip.
                raise DeliveryError(f"SMTP: {exc}", retryable=False) from exc
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        except OSError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        if refused:
            codes = {r: (resp.code, resp.message) for r, resp in refused.items()}
            raise _refused(codes, delivered=len(recipients) - len(refused))


def _refused(codes: dict[str, tuple[int, str]], delivered: int) -> DeliveryError:
    detail = f"{delivered}/{delivered + len(codes)} accepted; " + "; ".join(
        f"{r}: {code} {one_line(text)}" for r, (code, text) in codes.items()
    )
    transient = tuple(r for r, (code, _) in codes.items() if 400 <= code < 500)
    if transient:
        return DeliveryError(detail, retryable=True, remaining=transient)
    return DeliveryError(detail, retryable=False, remaining=tuple(codes) if delivered else None)
