"""Python client for applications: ``Monitoring(url, token=...)``.

Every call (``monitoring.payment.failure(...)``, ``monitoring.dashboard.endpoint(...)``, ...)
builds one event of the exporter's contract and puts it on a bounded in-memory queue; it never
blocks on the network and never raises into the caller. One daemon thread per client drains the
queue and POSTs JSON arrays of up to ``batch_size`` events to ``{url}/v1/events``, at the latest
``flush_interval`` seconds after the first queued event.

The same design serves threaded and asyncio applications: enqueueing only takes a lock for a few
microseconds. In asyncio code, call ``await monitoring.aclose()`` (or ``aflush``) on shutdown so
the event loop is not blocked while the last batch goes out.

When the queue is full the OLDEST queued event is dropped (recent events matter more for alerting)
and counted in ``stats.dropped``. Connection errors, 5xx, 408 and 429 answers are retried with
exponential backoff; a 429's or 503's ``Retry-After`` is honoured (up to ``max_retry_after``) and
pauses every batch, not only the one answered. Other 4xx answers are not retried (a 413 batch is
split in halves first); a 401/403 is warned about once, naming the token. Events that could not be
delivered count in ``stats.failed`` and make ``flush()`` return False; events the exporter refused
one by one count in ``stats.rejected``; calls with bad arguments are logged and count in
``stats.invalid``. Without a URL the client warns once and ignores every call.

It never holds its host process: the worker is a daemon thread, each request has a short timeout
(2 s), ``close()`` is bounded overall (2 s by default) and so is the flush at interpreter exit
(``EXIT_FLUSH_SECONDS`` for all clients together).
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import math
import os
import random
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass

import httpx

from passiton_monitoring_client.events import (
    MAX_TEXT,
    DashboardEvents,
    Event,
    InvalidEvent,
    PaymentEvents,
    TrafficEvents,
    WidgetEvents,
)

log = logging.getLogger("passiton.monitoring")

__all__ = ["EXIT_FLUSH_SECONDS", "MAX_TEXT", "ClientStats", "InvalidEvent", "Monitoring"]

# The longest interpreter exit waits for queued events, all clients together.
EXIT_FLUSH_SECONDS = 2.0


@dataclass(frozen=True)
class ClientStats:
    queued: int  # events currently waiting in the queue
    sent: int  # events the exporter accepted
    rejected: int  # events the exporter answered 202 for but refused individually
    failed: int  # events not delivered: retries exhausted, 4xx, or unreadable
    dropped: int  # events discarded because the queue was full or the client closed
    invalid: int  # calls whose arguments could not form a valid event

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --- the client --------------------------------------------------------------------------------

_live_clients: weakref.WeakSet[Monitoring] = weakref.WeakSet()


@atexit.register
def _close_all_at_exit() -> None:
    deadline = time.monotonic() + EXIT_FLUSH_SECONDS
    for client in list(_live_clients):
        try:
            if not client.close(timeout=max(0.0, deadline - time.monotonic())):
                log.warning("monitoring: events to %s not delivered before exit", client.url)
        except Exception:  # never in the way of the interpreter's exit
            log.debug("monitoring: closing a client at exit failed", exc_info=True)


def _permanent(status: int) -> bool:
    """A 4xx that a retry cannot fix (408 and 429 are retried; 413 splits the batch)."""
    return 400 <= status < 500 and status not in (408, 429)


def _reset_all_after_fork() -> None:
    for client in list(_live_clients):
        client._reset_after_fork()


os.register_at_fork(after_in_child=_reset_all_after_fork)


class Monitoring:
    """Queues monitoring events and ships them to the exporter from a background thread."""

    def __init__(
        self,
        url: str | None,
        token: str | None = None,
        *,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        max_queue: int = 10_000,
        timeout: float = 2.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        max_retry_after: float = 300.0,
    ) -> None:
        if batch_size < 1 or max_queue < 1:
            raise ValueError("batch_size and max_queue must be at least 1")
        self.url = (url or "").rstrip("/")
        # No URL: one warning here, then every call is ignored (no thread, no request).
        self.disabled = not self.url
        if self.disabled:
            log.warning(
                "monitoring: no exporter URL (Monitoring(url) or PASSITON_EXPORTER_URL); "
                "monitoring calls are ignored"
            )
        self._events_url = self.url + "/v1/events"
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._max_queue = max_queue
        self._timeout = timeout
        self._max_retries = max_retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._max_retry_after = max_retry_after
        self._paused_until = 0.0  # time.monotonic() before which nothing is sent (Retry-After)
        self._warned: set[str] = set()  # problems warned about once, until a batch gets through

        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: deque[Event] = deque()
        self._in_flight = 0
        self._flush_requested = False
        self._closed = False
        self._abort = threading.Event()  # set when close() gives up: stop retrying
        self._worker: threading.Thread | None = None
        self._http: httpx.Client | None = None

        self._sent = 0
        self._rejected = 0
        self._failed = 0
        self._dropped = 0
        self._invalid = 0

        self.payment = PaymentEvents(self)
        self.widget = WidgetEvents(self)
        self.traffic = TrafficEvents(self)
        self.dashboard = DashboardEvents(self)
        if not self.disabled:
            _live_clients.add(self)

    # -- public API --

    @property
    def stats(self) -> ClientStats:
        with self._lock:
            return ClientStats(
                queued=len(self._queue),
                sent=self._sent,
                rejected=self._rejected,
                failed=self._failed,
                dropped=self._dropped,
                invalid=self._invalid,
            )

    def flush(self, timeout: float | None = 5.0) -> bool:
        """Send everything queued now; wait up to ``timeout`` seconds.

        True when all of it was delivered; False when the time ran out or events were lost
        meanwhile (a 401/403 or other 4xx, retries exhausted, dropped from a full queue).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            if self._worker is None or not self._worker.is_alive():
                return not self._queue
            lost_before = self._failed + self._dropped
            self._flush_requested = True
            self._cond.notify_all()
            while self._queue or self._in_flight:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._failed + self._dropped == lost_before

    def close(self, timeout: float = 2.0) -> bool:
        """Flush what is queued for at most ``timeout`` seconds overall, then stop.

        Returns True when everything was delivered, False when the bound passed first (or events
        were lost). After the bound, retries and Retry-After waits stop; a request already on the
        wire is left to the daemon worker (at most the request timeout), which then frees the
        HTTP pool. Events still queued, and events recorded after close, count as dropped.
        """
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            if self._closed:
                return not self._queue and not self._in_flight
            self._closed = True
            worker = self._worker
        _live_clients.discard(self)
        done = True
        if worker is not None and worker.is_alive() and worker is not threading.current_thread():
            done = self.flush(max(0.0, deadline - time.monotonic()))
            with self._cond:
                self._cond.notify_all()  # the worker leaves once the queue is empty
            worker.join(max(0.0, deadline - time.monotonic()))
            if worker.is_alive():
                done = False
                self._abort.set()
        with self._cond:
            if self._queue:
                done = False
            self._dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        if worker is None or not worker.is_alive():
            self._close_http()
        return done

    def _close_http(self) -> None:
        http, self._http = self._http, None
        if http is not None:
            try:
                http.close()
            except Exception:
                log.debug("monitoring: closing the HTTP pool failed", exc_info=True)

    # The timeouts bound a wait in a worker thread, which asyncio cancellation cannot interrupt.
    async def aflush(self, timeout: float | None = 5.0) -> bool:  # noqa: ASYNC109
        return await asyncio.to_thread(self.flush, timeout)

    async def aclose(self, timeout: float = 2.0) -> bool:  # noqa: ASYNC109
        return await asyncio.to_thread(self.close, timeout)

    def __enter__(self) -> Monitoring:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Monitoring:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- enqueueing (caller side: must never raise) --

    def _invalid_call(self, name: str, exc: Exception) -> None:
        with self._lock:
            self._invalid += 1
            count = self._invalid
        if count <= 10 or count % 1000 == 0:
            log.warning("monitoring: %s ignored (%d so far): %s", name, count, exc)

    def _enqueue(self, event: Event) -> None:
        try:
            self._put(event)
        except Exception:  # e.g. the interpreter refusing new threads while it shuts down
            log.exception("monitoring event could not be queued")

    def _put(self, event: Event) -> None:
        if self.disabled:
            return
        with self._cond:
            if self._closed:
                self._dropped += 1
                return
            if self._worker is None:
                self._start_worker()
            queue = self._queue
            if len(queue) >= self._max_queue:
                queue.popleft()
                self._dropped += 1
            queue.append(event)
            size = len(queue)
            if size == 1 or size == self._batch_size:
                self._cond.notify_all()

    def _reset_after_fork(self) -> None:
        # The parent's thread, lock holder and connections do not exist in a forked child, and
        # the events still queued are the parent's to send.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue = deque()
        self._in_flight = 0
        self._flush_requested = False
        self._abort = threading.Event()
        self._paused_until = 0.0
        self._warned = set()
        self._worker = None
        self._http = None

    def _start_worker(self) -> None:
        self._http = httpx.Client(timeout=self._timeout)
        self._worker = threading.Thread(target=self._run, name="passiton-monitoring", daemon=True)
        self._worker.start()

    # -- the worker thread --

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    break
                deadline = time.monotonic() + self._flush_interval
                while (
                    len(self._queue) < self._batch_size
                    and not self._flush_requested
                    and not self._closed
                ):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                count = min(self._batch_size, len(self._queue))
                batch = [self._queue.popleft() for _ in range(count)]
                self._in_flight = count
            try:
                self._deliver(batch)
            except Exception:
                log.exception("monitoring batch lost")
                self._count(failed=len(batch))
            with self._cond:
                self._in_flight = 0
                if not self._queue:
                    self._flush_requested = False
                self._cond.notify_all()
        self._close_http()  # closed: the last request is done

    def _count(self, *, sent: int = 0, rejected: int = 0, failed: int = 0) -> None:
        with self._lock:
            self._sent += sent
            self._rejected += rejected
            self._failed += failed

    def _warn_once(self, kind: str, message: str, *args: object) -> None:
        with self._lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        log.warning(message, *args)

    def _deliver(self, batch: list[Event]) -> None:
        body = json.dumps(batch, separators=(",", ":"), allow_nan=False).encode()
        attempt = 0
        while True:
            paused = self._paused_until - time.monotonic()
            if (paused > 0 and self._abort.wait(paused)) or self._abort.is_set():
                self._count(failed=len(batch))  # given up by close(), which reports it
                return
            retry_after: float | None = None
            try:
                assert self._http is not None
                response = self._http.post(self._events_url, content=body, headers=self._headers)
            except httpx.TimeoutException:
                problem = f"no answer within {self._timeout:g} s"
            except httpx.HTTPError as exc:
                problem = f"{type(exc).__name__}: {exc}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    with self._lock:
                        self._warned.clear()
                    self._record_answer(batch, response)
                    return
                if status == 413 and len(batch) > 1:
                    half = len(batch) // 2
                    self._deliver(batch[:half])
                    self._deliver(batch[half:])
                    return
                problem = f"HTTP {status}: {response.text[:200]}"
                if _permanent(status):
                    self._count(failed=len(batch))
                    if status in (401, 403):
                        self._warn_once(
                            f"status {status}",
                            "monitoring: the exporter at %s refused the ingest token (HTTP %d): "
                            "check EXPORTER_INGEST_TOKEN; events are not delivered "
                            "(counted in stats.failed)",
                            self._events_url,
                            status,
                        )
                    else:
                        self._warn_once(
                            f"status {status}",
                            "monitoring: the exporter at %s refused events, not retried (%s); "
                            "counted in stats.failed",
                            self._events_url,
                            problem,
                        )
                    return
                if status in (429, 503):
                    retry_after = _retry_after(response.headers.get("Retry-After"))
                    if retry_after is not None:
                        retry_after = min(retry_after, self._max_retry_after)
                        self._paused_until = max(self._paused_until, time.monotonic() + retry_after)
            if self._abort.is_set():
                self._count(failed=len(batch))
                return
            if attempt >= self._max_retries:
                self._count(failed=len(batch))
                self._warn_once(
                    "lost",
                    "monitoring: events to %s lost after %d attempts (%s); counted in stats.failed",
                    self._events_url,
                    attempt + 1,
                    problem,
                )
                return
            delay = min(self._max_backoff, self._backoff * 2**attempt) * random.uniform(0.5, 1.0)
            if retry_after is not None:
                delay = max(delay, retry_after)
            attempt += 1
            log.debug("monitoring batch: %s; retry %d in %.2fs", problem, attempt, delay)
            if self._abort.wait(delay):
                self._count(failed=len(batch))
                return

    def _record_answer(self, batch: list[Event], response: httpx.Response) -> None:
        try:
            answer = response.json()
            accepted = int(answer["accepted"])
            rejected = int(answer["rejected"])
        except (ValueError, KeyError, TypeError):
            accepted, rejected, answer = len(batch), 0, {}
        if rejected:
            log.warning(
                "exporter rejected %d of %d events: %s",
                rejected,
                len(batch),
                json.dumps(answer.get("errors", []))[:500],
            )
        self._count(sent=accepted, rejected=rejected)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds
