"""The payment family's signals: the exact series a payment event produces (attempts, outcomes,
failure streaks, retries counted once, small declines)."""

from __future__ import annotations

from exporter.classify import PROCESSING_FAILURE_CLASSES, STRIPE_DECLINE_CODES
from exporter.metrics import COMMON_DECLINE_CODES
from tests.exporter.support import post_events as post
from tests.exporter.support import series


async def test_payment_family(exporter):
    app, client = exporter
    await post(
        client,
        [
            {
                "type": "payment.succeeded",
                "organization_id": "org-1",
                "amount": 1000,
                "currency": "usd",
                "duration_ms": 1200,
            },
            {
                "type": "payment.failed",
                "organization_id": "org-1",
                "amount": 2500,
                "currency": "usd",
                "error": "Your card was declined.",
                "decline_code": "insufficient_funds",
            },
            {
                "type": "payment.failed",
                "organization_id": "org-1",
                "amount": 500,
                "currency": "jpy",
                "decline_code": "made_up_code",
                "failure_code": "card_declined",
            },
            {
                "type": "payment.timeout",
                "organization_id": "org-2",
                "duration_ms": 30000,
                "provider": "stripe",
            },
            {
                "type": "stripe.webhook_failed",
                "event_type": "payment_intent.succeeded",
                "error": "connect ETIMEDOUT 10.0.0.1:5432",
            },
        ],
    )
    assert series(app, "passiton_payment_attempts_total") == {
        (
            "passiton_payment_attempts_total",
            (("organization_id", "org-1"), ("outcome", "succeeded")),
        ): 1,
        (
            "passiton_payment_attempts_total",
            (("organization_id", "org-1"), ("outcome", "failed")),
        ): 2,
        (
            "passiton_payment_attempts_total",
            (("organization_id", "org-2"), ("outcome", "timeout")),
        ): 1,
    }
    failures = series(app, "passiton_payment_failures_total")
    # every processing failure class exists at 0 from an organization's first payment, so that an
    # outage's first failures show in rate() at the next scrape
    assert {k for k, v in failures.items() if not v} == {
        (
            "passiton_payment_failures_total",
            (("decline_code", "none"), ("failure_class", cls), ("organization_id", org)),
        )
        for cls in PROCESSING_FAILURE_CLASSES
        for org in ("org-1", "org-2")
    }
    assert {k: v for k, v in failures.items() if v} == {
        (
            "passiton_payment_failures_total",
            (
                ("decline_code", "insufficient_funds"),
                ("failure_class", "insufficient_funds"),
                ("organization_id", "org-1"),
            ),
        ): 1,
        (
            "passiton_payment_failures_total",
            (
                ("decline_code", "other"),
                ("failure_class", "card_declined"),
                ("organization_id", "org-1"),
            ),
        ): 1,
    }
    # 2500 cents and 500 yen (a zero-decimal currency), in major units
    assert series(app, "passiton_payment_failed_amount_total") == {
        ("passiton_payment_failed_amount_total", (("currency", "USD"),)): 25.0,
        ("passiton_payment_failed_amount_total", (("currency", "JPY"),)): 500.0,
    }
    assert series(app, "passiton_payment_timeouts_total") == {
        (
            "passiton_payment_timeouts_total",
            (("organization_id", "org-2"), ("provider", "stripe")),
        ): 1,
    }
    durations = series(app, "passiton_payment_processing_duration_seconds_sum")
    assert durations == {
        ("passiton_payment_processing_duration_seconds_sum", (("outcome", "succeeded"),)): 1.2,
        ("passiton_payment_processing_duration_seconds_sum", (("outcome", "timeout"),)): 30.0,
    }
    assert series(app, "passiton_stripe_webhook_handler_failures_total") == {
        (
            "passiton_stripe_webhook_handler_failures_total",
            (("event_type", "payment_intent.succeeded"), ("reason", "timeout")),
        ): 1,
    }


async def test_consecutive_failures_count_until_a_success(exporter):
    """Failures in a row since the last success, per organization; card declines (the issuer
    answered: the payment path works) neither extend nor break the run."""
    app, client = exporter
    name = "passiton_payment_consecutive_failures"

    def streak(org: str) -> float | None:
        return series(app, name).get((name, (("organization_id", org),)))

    outage = {
        "type": "payment.failed",
        "organization_id": "org-1",
        "failure_code": "processing_error",
    }
    await post(client, [outage, outage, {"type": "payment.timeout", "organization_id": "org-1"}])
    assert streak("org-1") == 3
    declined = {
        "type": "payment.failed",
        "organization_id": "org-1",
        "decline_code": "expired_card",
    }
    await post(client, [declined, {**outage, "failure_code": None, "error": "connection reset"}])
    assert streak("org-1") == 4
    await post(client, [{"type": "payment.succeeded", "organization_id": "org-1"}])
    assert streak("org-1") == 0
    await post(client, [outage, {**outage, "organization_id": "org-2"}])
    assert (streak("org-1"), streak("org-2")) == (1, 1)
    # a success and failures in one batch count in their order
    await post(client, [outage, {"type": "payment.succeeded", "organization_id": "org-1"}, outage])
    assert streak("org-1") == 1


async def test_payments_count_a_payment_and_its_retries_once(exporter):
    """passiton_payments_total: what the decline-surge rules test. A donor's declined card
    tried again (the same payment_id) is one declined payment; attempts without an id count
    each; every outcome exists at 0 from the organization's first payment."""
    app, client = exporter
    name = "passiton_payments_total"

    def payments(org: str) -> dict[str, float]:
        found = series(app, name)
        return {
            dict(labels)["outcome"]: value
            for (_, labels), value in found.items()
            if dict(labels)["organization_id"] == org
        }

    declined = {
        "type": "payment.failed",
        "organization_id": "org-1",
        "decline_code": "do_not_honor",
    }
    await post(client, [{"type": "payment.succeeded", "organization_id": "org-1"}])
    assert payments("org-1") == {"succeeded": 1, "declined": 0, "failed": 0, "timeout": 0}
    await post(
        client,
        [
            {**declined, "payment_id": "pi_1"},
            {**declined, "payment_id": "pi_1", "decline_code": "insufficient_funds"},
            {**declined, "payment_id": "pi_1"},
            {**declined, "payment_id": "pi_2"},
            # the same id at another organization is another payment
            {**declined, "payment_id": "pi_1", "organization_id": "org-2"},
            declined,
            declined,
            {
                "type": "payment.failed",
                "organization_id": "org-1",
                "failure_code": "processing_error",
                "payment_id": "pi_3",
            },
            {
                "type": "payment.failed",
                "organization_id": "org-1",
                "failure_code": "processing_error",
                "payment_id": "pi_3",
            },
            {"type": "payment.timeout", "organization_id": "org-1"},
        ],
    )
    assert payments("org-1") == {"succeeded": 1, "declined": 4, "failed": 1, "timeout": 1}
    assert payments("org-2") == {"succeeded": 0, "declined": 1, "failed": 0, "timeout": 0}
    # every attempt still counts among the attempts
    attempts = series(app, "passiton_payment_attempts_total")
    assert (
        attempts[
            (
                "passiton_payment_attempts_total",
                (("organization_id", "org-1"), ("outcome", "failed")),
            )
        ]
        == 8
    )


async def test_declines_count_each_payment_once_under_its_decline_code(exporter):
    """passiton_payment_declines_total: declined payments by decline code, what the decline
    surge tests code by code. A payment's retries count once, under the code of its first
    decline, even when a retry carries another code; processing failures are not declines; the
    common codes exist at 0 from the organization's first payment, a rarer one from its first
    decline."""
    app, client = exporter
    name = "passiton_payment_declines_total"

    def declines(org: str) -> dict[str, float]:
        return {
            dict(labels)["decline_code"]: value
            for (_, labels), value in series(app, name).items()
            if dict(labels)["organization_id"] == org and value
        }

    declined = {"type": "payment.failed", "organization_id": "org-1"}
    await post(client, [{"type": "payment.succeeded", "organization_id": "org-1"}])
    created = {dict(labels)["decline_code"] for (_, labels), _ in series(app, name).items()}
    assert created == set(COMMON_DECLINE_CODES)
    assert created <= STRIPE_DECLINE_CODES  # each one a label value a decline can carry
    assert declines("org-1") == {}
    await post(
        client,
        [
            {**declined, "payment_id": "pi_1", "decline_code": "generic_decline"},
            {**declined, "payment_id": "pi_1", "decline_code": "generic_decline"},
            {**declined, "payment_id": "pi_2", "decline_code": "generic_decline"},
            {**declined, "payment_id": "pi_3", "decline_code": "do_not_honor"},
            {**declined, "payment_id": "pi_3", "decline_code": "insufficient_funds"},
            {**declined, "payment_id": "pi_4", "decline_code": "revocation_of_authorization"},
            # a code Stripe does not have is not known to be the card's: a failed payment
            {**declined, "payment_id": "pi_5", "decline_code": "no-such-code"},
            {**declined, "payment_id": "pi_6", "failure_code": "processing_error"},
        ],
    )
    assert declines("org-1") == {
        "generic_decline": 2,
        "do_not_honor": 1,
        "revocation_of_authorization": 1,
    }
    # the same payment declined again later is still one payment
    await post(client, [{**declined, "payment_id": "pi_2", "decline_code": "generic_decline"}])
    assert declines("org-1")["generic_decline"] == 2


async def test_small_declined_payments_count_card_testing_attempts(exporter):
    """Declined payments under 5 units of their currency, a payment's retries once: what card
    testing looks like. Larger payments, processing failures and retries are not counted."""
    app, client = exporter
    name = "passiton_payment_small_declines_total"
    small = {
        "type": "payment.failed",
        "organization_id": "org-1",
        "amount": 100,
        "currency": "usd",
        "decline_code": "generic_decline",
    }
    await post(client, [{"type": "payment.succeeded", "organization_id": "org-2"}])
    assert series(app, name)[(name, (("organization_id", "org-2"),))] == 0
    await post(
        client,
        [
            {**small, "payment_id": "pi_1"},
            {**small, "payment_id": "pi_1"},
            {**small, "payment_id": "pi_2", "amount": 499},
            {**small, "payment_id": "pi_3", "amount": 500},
            {**small, "payment_id": "pi_4", "amount": 300, "currency": "jpy"},
            {
                **small,
                "payment_id": "pi_5",
                "decline_code": None,
                "failure_code": "processing_error",
            },
        ],
    )
    assert series(app, name)[(name, (("organization_id", "org-1"),))] == 2
