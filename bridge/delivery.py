"""Outbox workers: claim due deliveries, send them through their channel, record the outcome.

A claim sets ``locked_until`` (a lease): a bridge killed mid-send leaves the row pending and,
once the lease runs out, any replica sends it again. Claims use ``FOR UPDATE SKIP LOCKED`` so
replicas never take the same row; an insert by any replica wakes every replica's workers
(``LISTEN/NOTIFY``, ``storage/outbox.py``), and a poll catches retries that come due.
Every channel retries through the one ``RetryPolicy``; permanent errors and deliveries whose first
attempt is older than its maximum age are dead-lettered with their last error (the age counts
from the first real send, so quiet hours and rate limits do not eat a delivery's retries).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from bridge.channels.base import DeliveryError, Notifier
from bridge.codec import decode_message, encode_message
from bridge.metrics import BridgeMetrics
from bridge.retry import RetryPolicy
from bridge.storage import ClaimedDelivery, Storage, StorageUnavailable

log = logging.getLogger(__name__)


def _recipients(raw: bytes | str) -> tuple[str, ...]:
    try:
        return decode_message(raw).recipients
    except Exception:  # an unreadable message fails (and is counted) when it is sent
        return ()


def _error_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:2000]


class DeliveryEngine:
    def __init__(
        self,
        storage: Storage,
        notifiers: dict[str, Notifier],
        retry: RetryPolicy,
        metrics: BridgeMetrics,
        clock: Callable[[], datetime],
        *,
        concurrency: int = 4,
        poll_seconds: float = 1.0,
        timeout_seconds: float = 30.0,
        lease_seconds: float = 120.0,
        rate_limits: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        self.storage = storage
        self.notifiers = notifiers
        self.retry = retry
        self.metrics = metrics
        self.clock = clock
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self.timeout_seconds = timeout_seconds
        self.lease = timedelta(seconds=max(lease_seconds, timeout_seconds * 2))
        self._wake = {name: asyncio.Event() for name in notifiers}
        self._loops: list[asyncio.Task[None]] = []
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._sent: list[int] = []
        self.rate_limits = rate_limits or {}
        self._recent: dict[tuple[str, tuple[str, ...]], deque[datetime]] = {}
        self._sent_flushed: asyncio.Future[None] | None = None

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    def start(self) -> None:
        self._stopping = False
        self._loops = [
            asyncio.create_task(self._channel_loop(name), name=f"delivery-{name}")
            for name in self.notifiers
        ]

    async def stop(self) -> None:
        """Stop claiming, let in-flight sends finish (bounded by the send timeout)."""
        self._stopping = True
        self.wake()
        if self._loops:
            await asyncio.gather(*self._loops, return_exceptions=True)
        if self._inflight:
            _, stuck = await asyncio.wait(self._inflight, timeout=self.timeout_seconds + 5)
            for task in stuck:  # their rows stay leased and are retried after the lease
                log.warning("cancelling a delivery still running at shutdown")
                task.cancel()
        self._loops = []

    async def _claim(
        self, channel: str, limit: int, ids: Sequence[int] | None = None
    ) -> list[ClaimedDelivery]:
        now = self.clock()
        return await self.storage.claim_deliveries(channel, limit, now, now + self.lease, ids)

    async def _channel_loop(self, channel: str) -> None:
        wake = self._wake[channel]
        inflight: set[asyncio.Task[None]] = set()
        while not self._stopping:
            free = self.concurrency - len(inflight)
            claimed: list[ClaimedDelivery] = []
            if free > 0:
                wake.clear()
                try:
                    claimed = await self._claim(channel, free)
                except StorageUnavailable as exc:
                    log.warning("cannot claim deliveries", extra={"error": str(exc)})
                except Exception:
                    log.exception("claiming deliveries failed", extra={"channel": channel})
                for delivery in claimed:
                    task = asyncio.create_task(self.process(delivery))
                    inflight.add(task)
                    self._inflight.add(task)
                    task.add_done_callback(inflight.discard)
                    task.add_done_callback(self._inflight.discard)
            if claimed and len(claimed) == free and len(inflight) < self.concurrency:
                continue
            waiter = asyncio.create_task(wake.wait())
            try:
                await asyncio.wait(
                    {waiter, *inflight},
                    timeout=self.poll_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
            finally:
                waiter.cancel()

    async def process(self, delivery: ClaimedDelivery) -> str:
        """Send one claimed delivery and record the outcome: success, retry, dead, or deferred
        (over a destination's rate limit)."""
        channel = delivery.channel
        notifier = self.notifiers.get(channel)
        if notifier is not None and channel in self.rate_limits:
            wait_until = self._rate_limited(channel, _recipients(delivery.message))
            if wait_until is not None:
                # Over this destination's budget: not a failure, just later (and not an attempt:
                # the retry budget and the maximum age start with the first real send).
                await self._record(
                    self.storage.mark_retry, delivery.id, wait_until, "rate limited", None
                )
                self.metrics.rate_limited.labels(channel=channel).inc()
                return "deferred"
        started = time.perf_counter()
        attempted_at = self.clock()
        error: BaseException | None = None
        retryable = True
        retry_after = None
        remaining: tuple[str, ...] | None = None
        message = None
        if notifier is None:
            error, retryable = (
                DeliveryError(f"channel {channel} is not configured", retryable=False),
                False,
            )
        else:
            try:
                message = decode_message(delivery.message)
                await asyncio.wait_for(notifier.notify(message), self.timeout_seconds)
            except DeliveryError as exc:
                error, retryable, retry_after = exc, exc.retryable, exc.retry_after
                remaining = getattr(exc, "remaining", None)
            except TimeoutError:
                error = TimeoutError(f"no answer within {self.timeout_seconds:g}s")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # network errors and channel bugs: try again later
                error = exc
            finally:
                self.metrics.delivery_duration.labels(channel=channel).observe(
                    time.perf_counter() - started
                )
        now = self.clock()
        if error is None:
            await self._mark_sent(delivery.id, now)
            self.metrics.deliveries.labels(channel=channel, outcome="success").inc()
            return "success"
        text = _error_text(error)
        if retry_after:
            self.metrics.rate_limited.labels(channel=channel).inc()
        # The maximum age counts from the first real attempt: a delivery held by quiet hours or a
        # rate limit before it was ever sent keeps every retry.
        first_attempt = delivery.first_attempt_at or attempted_at
        if not retryable or self.retry.expired(first_attempt, now):
            await self._record(self.storage.mark_dead, delivery.id, now, text)
            self.metrics.deliveries.labels(channel=channel, outcome="dead").inc()
            self.metrics.dead_letters.labels(channel=channel).inc()
            log.error(
                "delivery dead-lettered",
                extra={"channel": channel, "delivery_id": delivery.id, "error": text},
            )
            return "dead"
        delay = self.retry.next_delay(max(delivery.attempts, 1), retry_after)
        rewritten = None
        if remaining and message is not None:
            # Some recipients have it already; the retry goes only to those still owed it.
            rewritten = encode_message(replace(message, recipients=remaining))
        await self._record(
            partial(self.storage.mark_retry, attempted_at=attempted_at),
            delivery.id,
            now + timedelta(seconds=delay),
            text,
            rewritten,
        )
        self.metrics.deliveries.labels(channel=channel, outcome="retry").inc()
        log.warning(
            "delivery failed, will retry",
            extra={"channel": channel, "delivery_id": delivery.id, "delay": delay, "error": text},
        )
        return "retry"

    def _rate_limited(self, channel: str, recipients: tuple[str, ...]) -> datetime | None:
        """None when this destination may be sent to now (and counts the send); else when."""
        limit = self.rate_limits.get(channel)
        if limit is None:
            return None
        count, window = limit
        now = self.clock()
        recent = self._recent.setdefault((channel, recipients), deque())
        while recent and (now - recent[0]).total_seconds() >= window:
            recent.popleft()
        if len(recent) >= count:
            return recent[0] + timedelta(seconds=window)
        recent.append(now)
        return None

    async def _mark_sent(self, id: int, now: datetime) -> None:
        """Record a success; successes finishing together share one UPDATE (group commit)."""
        self._sent.append(id)
        if self._sent_flushed is not None:
            await asyncio.shield(self._sent_flushed)
            return
        flushed = self._sent_flushed = asyncio.get_running_loop().create_future()
        try:
            await asyncio.sleep(0)  # let the sends completing in this loop iteration join
            ids, self._sent = self._sent, []
            self._sent_flushed = None
            await self._record(self.storage.mark_sent, ids, now)
        finally:
            self._sent_flushed = None if self._sent_flushed is flushed else self._sent_flushed
            if not flushed.done():
                flushed.set_result(None)

    async def _record(self, method: Callable[..., object], *args: object) -> None:
        # The send happened; keep trying to record it for as long as the lease protects the row.
        deadline = time.monotonic() + self.lease.total_seconds() / 2
        while True:
            try:
                await method(*args)  # type: ignore[misc]
                return
            except StorageUnavailable as exc:
                if time.monotonic() > deadline:
                    log.error("could not record delivery outcome", extra={"error": str(exc)})
                    return
                await asyncio.sleep(1.0)

    async def run_once(self, channel: str | None = None, ids: Sequence[int] | None = None) -> int:
        """Claim and process everything due now (tests, ``test-alerts``); returns the count."""
        done = 0
        for name in [channel] if channel else list(self.notifiers):
            while True:
                claimed = await self._claim(name, max(self.concurrency, 1), ids)
                if not claimed:
                    break
                await asyncio.gather(*(self.process(d) for d in claimed))
                done += len(claimed)
        return done
