"""Attacks of issue 18 on the exporter's public edge, each against the in-process exporter over
HTTP (aiohttp's test client, the peer 127.0.0.1, trusted as a proxy where the attack needs one).

1. Unsigned requests to the Stripe webhook: bounded per client (429, counted) and never a page.
2. A second ``X-Forwarded-For`` line added by the proxy: the client's own first line is not
   believed, so spoofing it does not escape the per-client limit.
3. JSON nested a thousand deep: a 400 naming the problem, not a 500.
4. A beacon whose events all fail validation: its key is checked first.
5. Counters the alert rules read exist at 0 from start-up.
6. Every alert rule in one of the bridge's five categories (no ``security``).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import pytest
import yaml
from multidict import CIMultiDict

from exporter import stripe_events
from exporter.app import PUBLIC
from exporter.edge import parse_networks
from exporter.metrics import SIGNATURE_FAILURE_REASONS
from tests.exporter.support import all_samples, key_for, make_app, parse_exposition, sample

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules"


class Clock:
    """What the exporter's rate limits read, driven by the test: a bucket refills only when the
    test says so, so what a limit lets through is exact, however slow the machine."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


PROXY = parse_networks(["127.0.0.1"])
EVENT = {"type": "widget.script_error", "organization_id": "o", "widget_id": "w"}


@cache
def rule_groups() -> list[dict]:
    """Every rule group, parsed once (libyaml's parser where it is built)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [
        group
        for path in sorted(RULES.glob("*.yml"))
        for group in yaml.load(path.read_text(), Loader=loader)["groups"]  # noqa: S506
    ]


def alert_rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


# --- 1. unsigned Stripe requests ---


async def test_unsigned_stripe_requests_are_limited_per_client_and_counted(aiohttp_client):
    app = make_app(stripe_webhook_secret="whsec_test", stripe_rate_per_minute=30)
    client = await aiohttp_client(app[PUBLIC])
    statuses = []
    retry_after = set()
    for _ in range(60):
        response = await client.post("/v1/stripe/webhook", json={})
        statuses.append(response.status)
        if response.status == 429:
            retry_after.add(response.headers.get("Retry-After"))
    assert statuses.count(400) <= 31  # the bucket (30) and at most one refilled token
    assert statuses.count(429) >= 29
    assert retry_after == {"60"}
    limited = sample(app, "passiton_exporter_stripe_rate_limited_total")
    failures = sample(
        app, "passiton_stripe_webhook_signature_failures_total", reason="missing_header"
    )
    assert (limited, failures) == (statuses.count(429), statuses.count(400))


async def test_stripe_limit_is_per_client_behind_the_proxy(aiohttp_client):
    app = make_app(
        stripe_webhook_secret="whsec_test", stripe_rate_per_minute=2, trusted_proxies=PROXY
    )
    client = await aiohttp_client(app[PUBLIC])
    statuses = {}
    for sender in ("198.51.100.1", "198.51.100.2"):
        statuses[sender] = [
            (
                await client.post(
                    "/v1/stripe/webhook", json={}, headers={"X-Forwarded-For": sender}
                )
            ).status
            for _ in range(3)
        ]
    assert statuses == {s: [400, 400, 429] for s in statuses}


def test_what_an_anonymous_sender_controls_never_pages_critical_or_high():
    """Every alert reading what the public listener counts of strangers' requests (unsigned
    Stripe requests, forged keys, rate limits, refused connections, requests past the global
    rate, widget errors reported through the beacon) is low or medium. The widget alerts reading
    the beacon's widget errors per organization are corroborated by many clients instead
    (tests/abuse/test_fake_outage.py). A high alert may read them after ``unless`` only, to stand
    down while a flood explains its symptom (the loop's lag: EventLoopLagHigh, which has a
    medium twin for that case; its rule logic in prometheus/tests/runtime_test.yml)."""
    anonymous = (
        "passiton_stripe_webhook_signature_failures",
        "passiton_exporter_stripe_rate",
        "passiton_exporter_beacon_key_rejections",
        "passiton_exporter_beacon_rate_limited",
        "passiton_exporter_connections_refused",
        "passiton_exporter_public_throttled",
        # the bridge's public listener (Twilio, Slack, PagerDuty callbacks, e-mail links)
        "passiton_bridge_public_throttled",
        "passiton_bridge_public_requests",
        "passiton_bridge_public_connections_refused",
        'channel="beacon"',
    )
    for alertname in (
        "StripeWebhookSignatureFailures",
        "WidgetFailureFloodFromFewSources",
        "PublicListenerFlood",
    ):
        assert [r for r in alert_rules() if r["alert"] == alertname]
    recorded = {
        r["record"]
        for group in rule_groups()
        for r in group["rules"]
        if "record" in r and any(name in r["expr"] for name in anonymous)
    }
    stands_down = set()
    for rule in alert_rules():
        fires_on, _, unless = rule["expr"].partition("unless")
        reads = any(name in fires_on for name in (*anonymous, *recorded))
        if reads:
            assert rule["labels"]["severity"] in ("low", "medium"), rule["alert"]
        elif any(name in unless for name in (*anonymous, *recorded)):
            stands_down.add((rule["alert"], rule["labels"]["severity"]))
    assert stands_down == {("EventLoopLagHigh", "high")}


# --- 2. every X-Forwarded-For line ---


async def test_a_spoofed_first_forwarded_line_does_not_escape_the_client_limit(aiohttp_client):
    app = make_app(Clock(), beacon_rate_per_minute=120, trusted_proxies=PROXY)
    client = await aiohttp_client(app[PUBLIC])
    url = f"/v1/beacon?key={key_for('o', 'w')}"
    statuses = []
    for i in range(300):
        # the client's own line first (a new lie each time), then the line HAProxy adds
        headers = CIMultiDict(
            [
                ("X-Forwarded-For", f"203.0.113.{i % 250}"),
                ("X-Forwarded-For", "198.51.100.7"),
            ]
        )
        statuses.append((await client.post(url, json=EVENT, headers=headers)).status)
    assert statuses.count(202) == 120  # the bucket: the clock does not move, nothing refills
    assert statuses.count(429) == 180
    assert sample(app, "passiton_exporter_beacon_rate_limited_total", limit="client") == 180


# --- 3. deep JSON ---


@pytest.mark.parametrize("depth", [1000, 5000])  # the beacon takes 16 KiB
@pytest.mark.parametrize("endpoint", ["beacon", "events"])
async def test_deeply_nested_json_is_a_400_naming_the_problem(aiohttp_client, endpoint, depth):
    app = make_app(trusted_proxies=PROXY)
    if endpoint == "beacon":
        client = await aiohttp_client(app[PUBLIC])
        url = f"/v1/beacon?key={key_for('o', 'w')}"
    else:
        client = await aiohttp_client(app)
        url = "/v1/events"
    bodies = [
        b"[" * depth + b"]" * depth,
        b'{"type":"widget.loaded","organization_id":"o","widget_id":"w","duration_ms":1,"url":'
        + b"[" * depth
        + b"]" * depth
        + b"}",
    ]
    for body in bodies:
        before = all_samples(app)
        response = await client.post(url, data=body, headers={"Content-Type": "application/json"})
        assert response.status == 400
        answer = await response.json()
        assert answer["error"] == "too_deep"
        assert "nested too deeply" in answer["message"]
        after = all_samples(app)
        changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
        assert changed == {
            (
                "passiton_exporter_events_rejected_total",
                (("reason", "too_deep"), ("type", "unknown")),
            )
        }


# --- 4. the key before validation ---


@pytest.mark.parametrize(
    "body",
    [
        # every event invalid (no duration), a forged key for this widget
        [{"type": "widget.loaded", "organization_id": "o", "widget_id": "w"}] * 5,
        # every event of a type the beacon does not take
        [{"type": "payment.succeeded", "organization_id": "o", "widget_id": "w"}] * 5,
        # nothing names a widget the key could vouch for
        [{"type": "nope"}, 1, "x"],
    ],
)
async def test_a_beacon_of_invalid_events_is_refused_for_its_key(aiohttp_client, body):
    app = make_app()
    client = await aiohttp_client(app[PUBLIC])
    forged = key_for("o", "w", secret="not-the-beacon-secret-at-all")
    before = all_samples(app)
    response = await client.post(f"/v1/beacon?key={forged}", json=body)
    assert response.status == 403
    reason = (await response.json())["error"]
    assert reason in ("forged_key", "key_mismatch")
    after = all_samples(app)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {
        ("passiton_exporter_beacon_key_rejections_total", (("reason", reason),)),
        ("passiton_exporter_events_rejected_total", (("reason", reason), ("type", "unknown"))),
    }


async def test_a_beacon_of_invalid_events_with_the_right_key_is_still_answered(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app[PUBLIC])
    invalid = [{"type": "widget.loaded", "organization_id": "o", "widget_id": "w"}] * 2
    response = await client.post(f"/v1/beacon?key={key_for('o', 'w')}", json=invalid)
    assert response.status == 202
    assert (await response.json())["rejected"] == 2


# --- 5. counters at 0 from start-up ---

ZERO_AT_START = [
    *(
        f'passiton_stripe_webhook_signature_failures_total{{reason="{reason}"}}'
        for reason in SIGNATURE_FAILURE_REASONS
    ),
    *(
        f'passiton_exporter_beacon_key_rejections_total{{reason="{reason}"}}'
        for reason in ("missing_key", "malformed_key", "forged_key", "key_mismatch")
    ),
    'passiton_exporter_beacon_rate_limited_total{limit="client"}',
    'passiton_exporter_beacon_rate_limited_total{limit="key"}',
    "passiton_exporter_stripe_rate_limited_total",
    'passiton_exporter_public_throttled_total{outcome="delayed"}',
    'passiton_exporter_public_throttled_total{outcome="shed"}',
    'passiton_widget_error_reports_total{channel="beacon"}',
    'passiton_widget_error_reports_total{channel="events"}',
    'passiton_exporter_label_overflow_total{label="organization_id"}',
    'passiton_exporter_label_overflow_total{label="widget_id"}',
    'passiton_exporter_label_overflow_total{label="route"}',
    "passiton_exporter_body_timeouts_total",
]


async def test_a_fresh_exporter_exposes_the_counters_the_rules_read_at_0(aiohttp_client):
    client = await aiohttp_client(make_app())
    text = await (await client.get("/metrics")).text()
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    for series in ZERO_AT_START:
        assert lines.get(series) == "0.0", series
    assert parse_exposition(text)  # still a valid exposition


def test_every_signature_failure_reason_is_known_in_advance():
    source = Path(stripe_events.__file__).read_text()
    reasons = set(re.findall(r'SignatureFailure\("(\w+)"', source))
    reasons |= set(re.findall(r'reason = "(\w+)"', source))
    assert reasons == set(SIGNATURE_FAILURE_REASONS)


# --- 6. categories ---


def test_every_alert_is_filed_in_one_of_the_bridges_five_categories():
    categories = {"payment", "widget", "traffic", "dashboard", "system"}
    misfiled = {r["alert"]: r["labels"]["category"] for r in alert_rules()}
    assert {a: c for a, c in misfiled.items() if c not in categories} == {}
    assert misfiled["StripeWebhookSignatureFailures"] == "payment"
    assert misfiled["BeaconKeysForged"] == "widget"
    assert misfiled["WidgetFailureFloodFromFewSources"] == "widget"


# --- 7. one IPv6 /64, one client ---


async def test_one_ipv6_64_is_one_client_for_the_limit_and_the_sketch(aiohttp_client):
    # the limiter's clock is driven: nothing refills while the 300 beacons are sent (with the
    # wall clock, a slow run let more than the bucket's 120 through and the test flaked)
    clock = Clock()
    app = make_app(clock, beacon_rate_per_minute=120, trusted_proxies=PROXY)
    client = await aiohttp_client(app[PUBLIC])
    url = f"/v1/beacon?key={key_for('o', 'w')}"
    statuses = []
    for i in range(300):  # a new address of the same /64 for every beacon
        address = f"2001:db8:5:6:{i:x}:{i * 7:x}::{i + 1:x}"
        headers = {"X-Forwarded-For": address}
        statuses.append((await client.post(url, json=EVENT, headers=headers)).status)
    assert statuses.count(202) == 120
    assert statuses.count(429) == 180
    assert sample(app, "passiton_widget_failure_distinct_sources") == pytest.approx(1, abs=0.1)
    # another /64 has its own bucket; an IPv4-mapped address is its IPv4 address
    other = await client.post(url, json=EVENT, headers={"X-Forwarded-For": "2001:db8:5:7::1"})
    assert other.status == 202
    # the /64's bucket refills with time: 2 a second at 120 a minute
    clock.now += 1.0
    again = [
        (await client.post(url, json=EVENT, headers={"X-Forwarded-For": "2001:db8:5:6::7"})).status
        for _ in range(3)
    ]
    assert again == [202, 202, 429]
    for address in ("198.51.100.9", "::ffff:198.51.100.9"):
        await client.post(url, json=EVENT, headers={"X-Forwarded-For": address})
    assert sample(app, "passiton_widget_failure_distinct_sources") == pytest.approx(3, abs=0.1)
