"""The public edge: client address behind trusted proxies; rate limits per client and per key."""

from __future__ import annotations

import pytest

from exporter.app import PUBLIC
from exporter.edge import ClientAddress, RateLimiter, parse_networks
from passiton_common.settings import ConfigError
from tests.exporter.support import key_for, make_app, sample

PROXIES = parse_networks(["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # no proxy in between: the header is the client's own claim, ignored
        ("203.0.113.5", "198.51.100.1", "203.0.113.5"),
        ("203.0.113.5", None, "203.0.113.5"),
        # one trusted proxy: the address it received from
        ("10.1.2.3", "198.51.100.1", "198.51.100.1"),
        # the client prepends lies; only the hops the trusted proxies appended count
        ("10.1.2.3", "1.1.1.1, 8.8.8.8, 198.51.100.1", "198.51.100.1"),
        # two trusted hops, read right to left
        ("10.1.2.3", "6.6.6.6, 198.51.100.1, 192.0.2.7, 10.9.9.9", "198.51.100.1"),
        ("10.1.2.3", "198.51.100.1,2001:db8::5", "198.51.100.1"),
        # only trusted hops: the leftmost is as far as we can see
        ("10.1.2.3", "10.0.0.1, 10.0.0.2", "10.0.0.1"),
        # a garbled hop stops the walk at the last trusted address
        ("10.1.2.3", "198.51.100.1, not-an-ip", "10.1.2.3"),
        ("10.1.2.3", "", "10.1.2.3"),
        (None, None, "unknown"),
    ],
)
def test_client_address_through_trusted_hops_only(peer, forwarded, client):
    assert ClientAddress(PROXIES).resolve(peer, forwarded) == client


def test_without_trusted_proxies_the_header_is_never_read():
    assert ClientAddress(()).resolve("10.1.2.3", "198.51.100.1") == "10.1.2.3"


def test_a_huge_forwarded_header_is_read_only_a_bounded_way():
    hops = ", ".join(["10.0.0.1"] * 100_000 + ["198.51.100.9"])
    assert ClientAddress(PROXIES).resolve("10.1.2.3", hops) == "198.51.100.9"
    only_proxies = ", ".join(["198.51.100.9"] + ["10.0.0.1"] * 100)
    assert ClientAddress(PROXIES).resolve("10.1.2.3", only_proxies) == "10.0.0.1"


def test_bad_networks_name_the_variable():
    with pytest.raises(ConfigError, match="EXPORTER_TRUSTED_PROXIES"):
        parse_networks(["10.0.0.0/33"])


def test_rate_limiter_refills_and_stays_bounded():
    limiter = RateLimiter(per_minute=60, max_keys=3)
    assert [limiter.allow("a", 0.0) for _ in range(61)].count(True) == 60
    assert not limiter.allow("a", 0.5)
    assert limiter.allow("a", 1.0)  # one token a second
    for key in "bcdef":
        limiter.allow(key, 2.0)
    assert len(limiter) == 3


async def test_donors_behind_the_proxy_get_their_own_buckets(aiohttp_client):
    app = make_app(beacon_rate_per_minute=2, trusted_proxies=parse_networks(["127.0.0.1"]))
    client = await aiohttp_client(app[PUBLIC])
    event = {"type": "widget.script_error", "organization_id": "o", "widget_id": "w"}
    url = f"/v1/beacon?key={key_for('o', 'w')}"
    statuses = {}
    for donor in ("198.51.100.1", "198.51.100.2"):
        statuses[donor] = [
            (await client.post(url, json=event, headers={"X-Forwarded-For": donor})).status
            for _ in range(3)
        ]
    assert statuses == {d: [202, 202, 429] for d in statuses}
    assert sample(app, "passiton_exporter_beacon_rate_limited_total", limit="client") == 2
    # the sketch of failing clients sees the two donors, not the proxy
    assert sample(app, "passiton_widget_failure_distinct_sources") == pytest.approx(2, abs=0.1)


async def test_one_widget_key_has_its_own_limit(aiohttp_client):
    app = make_app(beacon_key_rate_per_minute=3, trusted_proxies=parse_networks(["127.0.0.1"]))
    client = await aiohttp_client(app[PUBLIC])
    event = {"type": "widget.script_error", "organization_id": "o", "widget_id": "w"}
    statuses = [
        (
            await client.post(
                f"/v1/beacon?key={key_for('o', 'w')}",
                json=event,
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
        ).status
        for i in range(5)
    ]
    assert statuses == [202, 202, 202, 429, 429]
    assert sample(app, "passiton_exporter_beacon_rate_limited_total", limit="key") == 2
    other = await client.post(
        f"/v1/beacon?key={key_for('o', 'w2')}", json={**event, "widget_id": "w2"}
    )
    assert other.status == 202
