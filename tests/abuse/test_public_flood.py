"""Attack (issue 18): flood the exporter's public listener with requests until the process's event
loop, which also serves ``/metrics`` and ``/v1/events``, runs late, and ``EventLoopLagHigh``
(severity high) pages on-call: a stranger paging.

The per-client limits answered such a flood with a cheap 429, yet a flood of 429s alone kept the
loop more than 250 ms late (``benchmarks/public_flood.py``, 5 minutes: before, 566 of 895 ticks
later than 50 ms, a p99 of 0.47 s; after, 34 of 1,174 and 0.20 s). The defence
(``exporter/handlers/admission.py``): the public listener serves at most
``EXPORTER_PUBLIC_RATE_PER_SECOND`` requests a second from everyone together; past it a request
waits for its turn, and one whose turn is further than ``EXPORTER_PUBLIC_MAX_WAIT_SECONDS`` is
answered 503 with ``Retry-After`` after that long, both counted. And the alert: the lag during a
flood the listener throttles is medium, the flood its own medium alert (promtool,
``prometheus/tests/runtime_test.yml``).

Here: the rate's arithmetic on a driven clock; the answers in process; then the real process
under a flood of 300 requests from 60 connections, with the assertions on counts and statuses
only: everything is answered, the handlers saw at most what the rate allows over the flood's
duration, every refusal is a counted 503 with ``Retry-After``, and the internal listener kept
answering ``/metrics`` and ``/v1/events``.
"""

from __future__ import annotations

import asyncio
import threading
import time

import aiohttp
import httpx
import pytest

from exporter.app import PUBLIC
from passiton_common.admission import GlobalRate
from tests.abuse.exporter_process import TOKEN, exporter_process
from tests.exporter.support import make_app, sample

THROTTLED = "passiton_exporter_public_throttled_total"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_global_rate_gives_turns_in_arrival_order_and_refuses_past_the_wait():
    rate = GlobalRate(10, max_wait=0.5)
    now = 1000.0
    assert [rate.reserve(now) for _ in range(10)] == [0.0] * 10  # the burst: one second's worth
    waits = [rate.reserve(now) for _ in range(5)]
    assert waits == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])  # each its turn, in order
    assert rate.reserve(now) is None  # its turn 0.6 s away: refused, no turn taken
    assert rate.reserve(now + 0.05) is None  # the next free turn is still 0.55 s away
    assert rate.reserve(now + 0.15) == pytest.approx(0.45)  # now it is within the wait
    assert rate.reserve(now + 10.0) == 0.0  # idle for long enough: the burst is back
    with pytest.raises(ValueError):
        GlobalRate(0, 1.0)


async def test_past_the_rate_a_public_request_waits_then_is_refused_with_retry_after(
    aiohttp_client,
):
    clock = Clock()  # driven: the turns depend on the requests' order only
    app = make_app(clock, public_rate_per_second=4, public_max_wait_seconds=0.3)
    client = await aiohttp_client(app[PUBLIC])
    # a burst of 4, then a fifth whose turn is 0.25 s away: held until then, then served
    statuses = [(await client.get("/-/healthy")).status for _ in range(5)]
    assert statuses == [200] * 5
    assert sample(app, THROTTLED, outcome="delayed") == 1
    refused = await client.post("/v1/beacon?key=", data=b"{}")  # its turn 0.5 s away
    assert refused.status == 503
    assert refused.headers["Retry-After"] == "1"
    assert (await refused.json())["error"] == "overloaded"
    assert sample(app, THROTTLED, outcome="shed") == 1
    # nothing of the refused request was looked at: no beacon refusal counted
    assert sample(app, "passiton_exporter_beacon_key_rejections_total", reason="missing_key") == 0
    clock.now += 10.0  # the burst is back
    assert [(await client.get("/-/healthy")).status for _ in range(4)] == [200] * 4
    assert sample(app, THROTTLED, outcome="delayed") == 1
    # the internal listener is not behind the public one's rate
    internal = await aiohttp_client(app)
    assert [(await internal.get("/metrics")).status for _ in range(20)] == [200] * 20


RATE = 20
MAX_WAIT = 0.5
CONNECTIONS = 60
PER_CONNECTION = 5


async def _flood(url: str) -> tuple[list[int], set[str | None], float]:
    """CONNECTIONS clients, each sending PER_CONNECTION unsigned Stripe webhooks one after the
    other; the statuses, the Retry-After values of the 503s, and how long the flood lasted."""
    statuses: list[int] = []
    retry_after: set[str | None] = set()
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            for _ in range(PER_CONNECTION):
                async with session.post(f"{url}/v1/stripe/webhook", data=b"{}") as response:
                    await response.read()
                    statuses.append(response.status)
                    if response.status == 503:
                        retry_after.add(response.headers.get("Retry-After"))

        started = time.monotonic()
        await asyncio.gather(*(client() for _ in range(CONNECTIONS)))
        return statuses, retry_after, time.monotonic() - started


def test_a_request_flood_on_the_public_listener_is_throttled_and_metrics_keep_answering():
    env = {
        "STRIPE_WEBHOOK_SECRET": "whsec_flood_test",
        "EXPORTER_PUBLIC_RATE_PER_SECOND": str(RATE),
        "EXPORTER_PUBLIC_MAX_WAIT_SECONDS": str(MAX_WAIT),
        "EXPORTER_STRIPE_RATE_PER_MINUTE": "30",
    }
    with exporter_process(env) as exporter:
        for outcome in ("delayed", "shed"):  # at 0 from start-up
            assert exporter.sample(f'{THROTTLED}{{outcome="{outcome}"}}') == 0
        # Prometheus and an application keep using the internal listener during the flood
        internal: list[int] = []
        flooding = threading.Event()
        flooding.set()

        def scrape_and_ingest() -> None:
            event = {"type": "auth.failed", "reason": "bad_password"}
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(base_url=exporter.internal, timeout=30) as http:
                while flooding.is_set():
                    internal.append(http.get("/metrics").status_code)
                    internal.append(
                        http.post("/v1/events", json=event, headers=headers).status_code
                    )
                    time.sleep(0.1)

        scraper = threading.Thread(target=scrape_and_ingest)
        scraper.start()
        try:
            statuses, retry_after, seconds = asyncio.run(_flood(exporter.public))
        finally:
            flooding.clear()
            scraper.join()
        shed = exporter.sample(f'{THROTTLED}{{outcome="shed"}}')
        delayed = exporter.sample(f'{THROTTLED}{{outcome="delayed"}}')
        served = exporter.sample("passiton_exporter_stripe_rate_limited_total") + sum(
            exporter.sample(f'passiton_stripe_webhook_signature_failures_total{{reason="{r}"}}')
            for r in ("missing_header", "malformed_header")
        )
    assert len(statuses) == CONNECTIONS * PER_CONNECTION  # every request answered
    assert set(statuses) <= {400, 429, 503}
    # every refusal of the global rate is a counted 503 with Retry-After, and there were some:
    # 60 connections want 3 s of turns at 20 a second, more than the 0.5 s wait
    assert statuses.count(503) == shed > 0
    assert retry_after == {"1"}
    # what reached the handlers is what the rate allows over the flood's duration (the burst,
    # then 20 a second), however fast the flood came: the loop's work is bounded
    assert served == len(statuses) - statuses.count(503)
    assert served <= RATE + RATE * seconds + 1
    assert delayed > 0
    # the internal listener answered throughout
    assert internal
    assert set(internal) <= {200, 202}
    assert internal.count(200) == internal.count(202)
