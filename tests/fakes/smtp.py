"""A real SMTP server (aiosmtpd) collecting messages, with scriptable 4xx/5xx replies and TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import warnings
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes._server import LoopThread

TlsMode = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    tls: bool  # whether the session was encrypted when the message arrived
    authenticated_as: str | None


class FakeSMTP:
    """aiosmtpd on 127.0.0.1 with a free port, in the running event loop.

    ``tls="starttls"`` offers (and requires) STARTTLS, ``"tls"`` is implicit TLS from the first
    byte; both need ``server_ssl`` (e.g. from a trustme CA). ``credentials=(user, password)``
    requires AUTH. ``reply_rcpt(...)``/``reply_data(...)`` queue replies such as
    ``"451 4.3.0 Try again later"`` or ``"550 5.1.1 No such user"`` for the next RCPT/DATA
    commands; ``reply_rcpt_for(address, reply)`` answers one address that way every time.
    """

    def __init__(
        self,
        *,
        tls: TlsMode = "none",
        server_ssl: ssl.SSLContext | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        if tls != "none" and server_ssl is None:
            raise ValueError("TLS modes need server_ssl")
        self.tls = tls
        self.server_ssl = server_ssl
        self.credentials = credentials
        self.messages: list[ReceivedMail] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._rcpt_replies: deque[str] = deque()
        self._data_replies: deque[str] = deque()
        self._rcpt_by_address: dict[str, str] = {}
        self._server: asyncio.AbstractServer | None = None
        self._thread_runner: LoopThread | None = None
        self._data_stalls: deque[float] = deque()
        self._closing: asyncio.Event | None = None

    def reply_rcpt(self, reply: str, times: int = 1) -> None:
        self._rcpt_replies.extend([reply] * times)

    def reply_data(self, reply: str, times: int = 1) -> None:
        self._data_replies.extend([reply] * times)

    def reply_rcpt_for(self, address: str, reply: str) -> None:
        self._rcpt_by_address[address] = reply

    def stall_data(self, seconds: float, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next DATA commands (client timeouts)."""
        self._data_stalls.extend([seconds] * times)

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if address in self._rcpt_by_address:
            return self._rcpt_by_address[address]
        if self._rcpt_replies:
            return self._rcpt_replies.popleft()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._data_stalls and self._closing is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self._data_stalls.popleft())
        if self._data_replies:
            return self._data_replies.popleft()
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        self.messages.append(
            ReceivedMail(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,  # type: ignore[arg-type]
                tls=session.ssl is not None
                or (
                    server.transport is not None
                    and bool(server.transport.get_extra_info("ssl_object"))
                ),
                authenticated_as=login.decode() if login else None,
            )
        )
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            self.credentials is not None
            and isinstance(data, LoginPassword)
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    def _protocol(self) -> SMTP:
        with warnings.catch_warnings():
            # aiosmtpd warns about AUTH without STARTTLS; with implicit TLS it is encrypted.
            warnings.simplefilter("ignore", UserWarning)
            return self._make_protocol()

    def _make_protocol(self) -> SMTP:
        protocol = SMTP(
            self,
            hostname="fake-smtp.test",
            tls_context=self.server_ssl if self.tls == "starttls" else None,
            require_starttls=self.tls == "starttls",
            authenticator=self._authenticate if self.credentials else None,
            auth_required=self.credentials is not None,
            # Implicit TLS is invisible to aiosmtpd (it only tracks STARTTLS).
            auth_require_tls=self.tls == "starttls",
            decode_data=False,
        )
        return protocol

    async def start(self) -> tuple[str, int]:
        loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        self._server = await loop.create_server(
            self._protocol,
            host="127.0.0.1",
            port=0,
            ssl=self.server_ssl if self.tls == "tls" else None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.host, self.port

    async def stop(self) -> None:
        if self._closing is not None:
            self._closing.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def start_in_thread(self) -> tuple[str, int]:
        """Serve from a daemon thread with its own event loop; returns (host, port)."""
        self._thread_runner = LoopThread("FakeSMTP")
        return self._thread_runner.run(self.start, self.stop)

    def stop_thread(self) -> None:
        if self._thread_runner is not None:
            self._thread_runner.stop()
            self._thread_runner = None

    async def __aenter__(self) -> FakeSMTP:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
