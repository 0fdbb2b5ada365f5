"""Attack (issue 18): flood the bridge's public listener (the callbacks of Twilio, Slack and
PagerDuty, the e-mail links: anyone can reach it) until the bridge's event loop, which also serves
Alertmanager's webhook and ``/metrics``, runs late and ``EventLoopLagHigh`` (high) pages on-call.

The defence is the exporter's (passiton_common/admission.py): the public listener serves at most
``BRIDGE_PUBLIC_RATE_PER_SECOND`` requests a second from everyone together, before the per-address
limit and before any body is read; past it a request waits its turn, and one whose turn is further
than ``BRIDGE_PUBLIC_MAX_WAIT_SECONDS`` is answered 503 with ``Retry-After`` after that long. Both
counted in ``passiton_bridge_public_throttled_total``, which the rules read as the flood that
explains the bridge's lag (medium, not high: ``prometheus/tests/runtime_test.yml``).

Here through the production wiring (``bridge.app`` starts the public listener from the config)
and real HTTP; on the old code every request of the flood was served.
"""

from __future__ import annotations

import asyncio

import aiohttp

from tests.bridge.support import AUTH, am_alert, payload
from tests.oncall.bridge_support import oncall_bridge

FLOOD = 12
RATE = 3


async def test_a_flood_of_the_bridge_public_listener_is_throttled_and_the_webhook_answers(
    db_url, aiohttp_client, fake_twilio, tmp_path
):
    client = await oncall_bridge(
        db_url,
        aiohttp_client,
        fake_twilio,
        tmp_path,
        public_rate_per_second=RATE,
        public_max_wait_seconds=0.2,
    )
    metrics = await (await client.get("/metrics")).text()
    # both outcomes exist at 0 from start-up, so increase() sees the first one
    for outcome in ("delayed", "shed"):
        assert f'passiton_bridge_public_throttled_total{{outcome="{outcome}"}} 0.0' in metrics

    url = f"http://127.0.0.1:{client.bridge.public_port}/-/healthy"
    async with aiohttp.ClientSession() as session:

        async def one() -> tuple[int, str | None]:
            async with session.get(url) as response:
                await response.read()
                return response.status, response.headers.get("Retry-After")

        answers = await asyncio.gather(*(one() for _ in range(FLOOD)))
        # meanwhile the internal listener is not behind the public one's rate
        webhook = await client.post("/v1/alertmanager", json=payload(am_alert()), headers=AUTH)
        assert webhook.status == 200

    served = [a for a in answers if a[0] == 200]
    refused = [a for a in answers if a[0] != 200]
    metrics = await (await client.get("/metrics")).text()

    def count(outcome: str) -> float:
        prefix = f'passiton_bridge_public_throttled_total{{outcome="{outcome}"}} '
        line = next(line for line in metrics.splitlines() if line.startswith(prefix))
        return float(line.removeprefix(prefix))

    # the burst of RATE served at once, each later one served only after its turn (counted)
    assert len(served) == RATE + count("delayed")
    # the rest refused: 503 with Retry-After, each counted
    assert refused, answers
    assert all(a == (503, "1") for a in refused), answers
    assert len(refused) == count("shed")
    assert len(served) < FLOOD
