"""The one interface every channel implements, modelled on Alertmanager's notify package.

A Notifier sends one Message and either returns (done) or raises DeliveryError saying whether
the failure is worth retrying. The retry loop lives in one place (``bridge.retry``), never in
a channel.
"""

from __future__ import annotations

from typing import Protocol

from bridge.model import Message


class DeliveryError(Exception):
    """A failed send. ``retryable`` tells the shared retry policy whether to try again."""

    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class Notifier(Protocol):
    """One channel. ``name`` is the channel name used in routing and metrics."""

    name: str

    async def notify(self, message: Message) -> None:
        """Send the message; raise DeliveryError on failure."""
        ...
