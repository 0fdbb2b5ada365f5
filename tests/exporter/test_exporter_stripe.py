"""Stripe's webhook: signatures made with the stripe library's own helper, dedupe, outcomes."""

from __future__ import annotations

import json
import time

import pytest
import stripe

from exporter.app import PUBLIC
from tests.exporter.support import all_samples, make_app, sample, series

SECRET = "whsec_test_secret"


def signed(payload: dict, secret: str = SECRET, timestamp: int | None = None) -> tuple[bytes, str]:
    body = json.dumps(payload).encode()
    header = stripe.WebhookSignature.generate_signature_header(
        payload=body.decode(), secret=secret, timestamp=timestamp
    )
    return body, header


def event(event_id: str, event_type: str, obj: dict, account: str | None = None) -> dict:
    payload = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "data": {"object": obj},
    }
    if account:
        payload["account"] = account
    return payload


FAILED_INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "amount": 2500,
    "currency": "eur",
    "metadata": {"organization_id": "org-9"},
    "last_payment_error": {
        "code": "card_declined",
        "decline_code": "stolen_card",
        "message": "Your card was declined.",
    },
}


@pytest.fixture
async def stripe_exporter(aiohttp_client):
    app = make_app(stripe_webhook_secret=SECRET)
    return app, await aiohttp_client(app[PUBLIC])


async def test_failed_payment_intent_feeds_payment_metrics(stripe_exporter):
    app, client = stripe_exporter
    body, header = signed(event("evt_1", "payment_intent.payment_failed", FAILED_INTENT))
    response = await client.post(
        "/v1/stripe/webhook", data=body, headers={"Stripe-Signature": header}
    )
    assert response.status == 200
    assert await response.json() == {"received": True, "duplicate": False}
    failures = series(app, "passiton_payment_failures_total")
    assert {k: v for k, v in failures.items() if v} == {
        (
            "passiton_payment_failures_total",
            (
                ("decline_code", "stolen_card"),
                ("failure_class", "fraud"),
                ("organization_id", "org-9"),
            ),
        ): 1
    }
    assert sample(app, "passiton_payment_failed_amount_total", currency="EUR") == 25.0
    assert (
        sample(
            app, "passiton_stripe_webhook_events_total", event_type="payment_intent.payment_failed"
        )
        == 1
    )


async def test_duplicate_event_ids_are_ignored(stripe_exporter):
    app, client = stripe_exporter
    body, header = signed(event("evt_dup", "payment_intent.payment_failed", FAILED_INTENT))
    for _ in range(3):
        response = await client.post(
            "/v1/stripe/webhook", data=body, headers={"Stripe-Signature": header}
        )
        assert response.status == 200
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-9", outcome="failed")
        == 1
    )
    assert sample(app, "passiton_stripe_webhook_duplicate_events_total") == 2


async def test_charge_events_behind_a_payment_intent_are_not_counted_twice(stripe_exporter):
    app, client = stripe_exporter
    charge = {
        "id": "ch_1",
        "object": "charge",
        "amount": 2500,
        "currency": "eur",
        "payment_intent": "pi_1",
        "failure_code": "card_declined",
        "outcome": {"type": "issuer_declined", "reason": "stolen_card"},
    }
    legacy = {
        **charge,
        "id": "ch_2",
        "payment_intent": None,
        "metadata": {"organization_id": "org-3"},
        "outcome": {"type": "issuer_declined", "reason": "insufficient_funds"},
    }
    for evt in (
        event("evt_a", "payment_intent.payment_failed", FAILED_INTENT),
        event("evt_b", "charge.failed", charge),
        event("evt_c", "charge.failed", legacy),
        event(
            "evt_d",
            "payment_intent.succeeded",
            {"id": "pi_2", "object": "payment_intent", "amount": 100, "currency": "usd"},
            account="acct_123",
        ),
        event("evt_e", "customer.created", {"id": "cus_1", "object": "customer"}),
    ):
        body, header = signed(evt)
        response = await client.post(
            "/v1/stripe/webhook", data=body, headers={"Stripe-Signature": header}
        )
        assert response.status == 200
    assert series(app, "passiton_payment_attempts_total") == {
        (
            "passiton_payment_attempts_total",
            (("organization_id", "org-9"), ("outcome", "failed")),
        ): 1,
        (
            "passiton_payment_attempts_total",
            (("organization_id", "org-3"), ("outcome", "failed")),
        ): 1,
        (
            "passiton_payment_attempts_total",
            (("organization_id", "acct_123"), ("outcome", "succeeded")),
        ): 1,
    }
    assert (
        sample(
            app,
            "passiton_payment_failures_total",
            organization_id="org-3",
            decline_code="insufficient_funds",
            failure_class="insufficient_funds",
        )
        == 1
    )


async def test_stripe_retries_of_one_payment_intent_are_one_declined_payment(stripe_exporter):
    """Every failed attempt counts in the attempts; a PaymentIntent failing again (the donor
    trying another card) is the same payment among passiton_payments_total."""
    app, client = stripe_exporter
    again = {**FAILED_INTENT, "last_payment_error": {"code": "card_declined"}}
    other = {**FAILED_INTENT, "id": "pi_2"}
    for n, intent in enumerate((FAILED_INTENT, again, other)):
        body, header = signed(event(f"evt_r{n}", "payment_intent.payment_failed", intent))
        response = await client.post(
            "/v1/stripe/webhook", data=body, headers={"Stripe-Signature": header}
        )
        assert response.status == 200
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-9", outcome="failed")
        == 3
    )
    payments = {
        outcome: sample(app, "passiton_payments_total", organization_id="org-9", outcome=outcome)
        for outcome in ("declined", "failed", "succeeded")
    }
    assert payments == {"declined": 2, "failed": 0, "succeeded": 0}


@pytest.mark.parametrize(
    ("make_header", "reason"),
    [
        (lambda body: None, "missing_header"),
        (lambda body: signed(json.loads(body), secret="whsec_other")[1], "no_matching_signature"),
        (
            lambda body: signed(json.loads(body), timestamp=int(time.time()) - 3600)[1],
            "timestamp_outside_tolerance",
        ),
        (lambda body: "garbage", "malformed_header"),
    ],
)
async def test_bad_signatures_are_400_and_counted(stripe_exporter, make_header, reason):
    app, client = stripe_exporter
    body, _ = signed(event("evt_x", "payment_intent.payment_failed", FAILED_INTENT))
    before = all_samples(app)
    header = make_header(body)
    headers = {"Stripe-Signature": header} if header else {}
    response = await client.post("/v1/stripe/webhook", data=body, headers=headers)
    assert response.status == 400
    assert (await response.json())["error"] == reason
    changed = {k: v for k, v in all_samples(app).items() if before.get(k) != v}
    assert changed == {
        ("passiton_stripe_webhook_signature_failures_total", (("reason", reason),)): 1
    }


async def test_tampered_body_fails(stripe_exporter):
    app, client = stripe_exporter
    body, header = signed(event("evt_t", "payment_intent.payment_failed", FAILED_INTENT))
    tampered = body.replace(b"2500", b"9999")
    response = await client.post(
        "/v1/stripe/webhook", data=tampered, headers={"Stripe-Signature": header}
    )
    assert response.status == 400
    assert (
        sample(app, "passiton_payment_attempts_total", organization_id="org-9", outcome="failed")
        == 0
    )


async def test_webhook_off_without_secret(aiohttp_client):
    client = await aiohttp_client(make_app()[PUBLIC])
    response = await client.post("/v1/stripe/webhook", data=b"{}")
    assert response.status == 404
