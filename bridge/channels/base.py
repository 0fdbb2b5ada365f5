"""The one interface every channel implements, modelled on Alertmanager's notify package.

A Notifier sends one Message and either returns (done) or raises DeliveryError saying whether
the failure is worth retrying. The retry loop lives in one place (``bridge.retry``), never in
a channel.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from bridge.model import Message


class DeliveryError(Exception):
    """A failed send. ``retryable`` tells the shared retry policy whether to try again.

    ``remaining`` is set when a channel that sends one copy per recipient (SMS, e-mail, Slack
    webhooks) reached some recipients but not others: it names the recipients still owed the
    message. A worker that retries with ``dataclasses.replace(message, recipients=remaining)``
    does not send the same text twice to the ones that already have it; ``None`` means nobody
    was reached (or the channel cannot tell), so a retry sends to everyone.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        remaining: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.remaining = remaining


class Notifier(Protocol):
    """One channel. ``name`` is the channel name used in routing and metrics."""

    name: str

    async def notify(self, message: Message) -> None:
        """Send the message; raise DeliveryError on failure."""
        ...


async def deliver_each(
    recipients: Sequence[str],
    send: Callable[[str], Awaitable[None]],
    *,
    what: str = "recipient",
    show: Callable[[str], str] = str,
) -> None:
    """Send to every recipient in turn; one combined DeliveryError if any of them failed.

    The error is retryable when any failure was, permanent only when every failure was;
    ``retry_after`` is the longest one asked for. ``remaining`` names the recipients still owed
    the message (those that failed transiently; for a permanent error, those that failed) and is
    only set when it is not simply everyone. ``show`` renders a recipient for the error text
    (Slack webhook URLs are credentials and must not end up in a stored error).
    """
    transient: list[tuple[str, DeliveryError]] = []
    permanent: list[tuple[str, DeliveryError]] = []
    delivered = 0
    for recipient in recipients:
        try:
            await send(recipient)
        except DeliveryError as exc:
            (transient if exc.retryable else permanent).append((recipient, exc))
        else:
            delivered += 1
    if not transient and not permanent:
        return
    parts = [f"{what} {show(r)}: {e}" for r, e in transient + permanent]
    summary = f"{delivered}/{len(recipients)} delivered; " + "; ".join(parts)
    owed = tuple(r for r, _ in (transient or permanent))
    remaining = owed if len(owed) < len(recipients) else None
    if transient:
        waits = [e.retry_after for _, e in transient if e.retry_after is not None]
        raise DeliveryError(
            summary,
            retryable=True,
            retry_after=max(waits) if waits else None,
            remaining=remaining,
        )
    raise DeliveryError(summary, retryable=False, remaining=remaining)
