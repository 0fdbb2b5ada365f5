"""The Payments dashboard: attempts, failures, declines, timeouts and Stripe webhooks."""

from __future__ import annotations

from typing import Any

from .panels import ORG, dashboard, dashed, query_variable, row, stat, target, timeseries


def payments() -> dict[str, Any]:
    attempts = f"passiton_payment_attempts_total{{{ORG}}}"
    failures = f"passiton_payment_failures_total{{{ORG}}}"
    panels = [
        stat(
            "Payment attempts",
            "Payment attempts per second of the selected organizations, any outcome.",
            "ops",
            f"sum(rate({attempts}[$__rate_interval]))",
        ),
        stat(
            "Failure ratio (5m)",
            "Share of the selected organizations' payments that failed or timed out over the "
            "last 5 minutes (recorded by the payment rules).",
            "percentunit",
            f"sum(organization:passiton_payment_failures:rate5m{{{ORG}}})"
            f" / sum(organization:passiton_payment_attempts:rate5m{{{ORG}}})",
            thresholds=[(0.1, "orange"), (0.2, "red")],
        ),
        stat(
            "Timeout ratio (5m)",
            "Share of the selected organizations' payments that timed out over the last 5 minutes.",
            "percentunit",
            f"sum(organization:passiton_payment_timeouts:rate5m{{{ORG}}})"
            f" / sum(organization:passiton_payment_attempts:rate5m{{{ORG}}})",
            thresholds=[(0.05, "red")],
        ),
        stat(
            "Stripe signature failures (5m)",
            "Requests to /v1/stripe/webhook whose signature did not verify in the last "
            "5 minutes: a wrong secret, or forged events.",
            "short",
            "platform:passiton_stripe_webhook_signature_failures:increase5m or vector(0)",
            thresholds=[(5, "orange"), (50, "red")],
            decimals=0,
        ),
        row("By organization"),
        timeseries(
            "Failure ratio by organization",
            "Failed and timed-out payments over all attempts in 5 minutes, per organization, "
            "with each organization's alert threshold (dashed; alert_configurations or the "
            "default 20 %).",
            "percentunit",
            target(
                f"organization:passiton_payment_failure_ratio:rate5m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_payment_failure_ratio:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
        timeseries(
            "Payment attempts by outcome",
            "Payment attempts per second of the selected organizations, stacked by outcome "
            "(succeeded, failed, timeout).",
            "ops",
            target(f"sum by (outcome) (rate({attempts}[$__rate_interval]))", "{{outcome}}"),
            stack=True,
        ),
        timeseries(
            "Timeout ratio by organization",
            "Timed-out payments over all attempts in 5 minutes, per organization, with its "
            "threshold (dashed).",
            "percentunit",
            target(
                f"organization:passiton_payment_timeout_ratio:rate5m{{{ORG}}}",
                "{{organization_id}}",
            ),
            target(
                f"organization:passiton_payment_timeout_ratio:threshold{{{ORG}}}",
                "threshold {{organization_id}}",
            ),
            maximum=1,
            overrides=[dashed("threshold .*")],
        ),
        timeseries(
            "Processing time",
            "Payment processing time where the application reports it, 50th and 95th "
            "percentile by outcome, all organizations.",
            "s",
            target(
                "histogram_quantile(0.95, sum by (le, outcome) "
                "(rate(passiton_payment_processing_duration_seconds_bucket[$__rate_interval])))",
                "p95 {{outcome}}",
            ),
            target(
                "histogram_quantile(0.5, sum by (le, outcome) "
                "(rate(passiton_payment_processing_duration_seconds_bucket[$__rate_interval])))",
                "p50 {{outcome}}",
            ),
        ),
        row("Declines and failures"),
        timeseries(
            "Declines by decline code",
            "Failed payments per second of the selected organizations by Stripe decline code.",
            "ops",
            target(
                f"sum by (decline_code) (rate(passiton_payment_failures_total{{{ORG}, "
                f'decline_code!="none"}}[$__rate_interval]))',
                "{{decline_code}}",
            ),
            stack=True,
        ),
        timeseries(
            "Failures by class",
            "Failed payments per second by failure class: card declines versus processing, "
            "network, rate-limit, configuration and timeout errors.",
            "ops",
            target(
                f"sum by (failure_class) (rate({failures}[$__rate_interval]))",
                "{{failure_class}}",
            ),
            stack=True,
        ),
        timeseries(
            "Decline code share against its baseline",
            "Each decline code's share of all declines over 30 minutes, and (dashed) its share "
            "over the previous day: the comparison behind PaymentDeclineCodeSurge.",
            "percentunit",
            target("decline_code:passiton_payment_decline_share:ratio30m", "{{decline_code}}"),
            target(
                "decline_code:passiton_payment_decline_share:ratio30m_baseline1d",
                "baseline {{decline_code}}",
            ),
            maximum=1,
            overrides=[dashed("baseline .*")],
        ),
        timeseries(
            "Failed amount per hour by currency",
            "Money at risk: the amount of failed payments per hour, in major units of each "
            "currency, all organizations.",
            "short",
            target(
                "sum by (currency) "
                "(rate(passiton_payment_failed_amount_total[$__rate_interval])) * 3600",
                "{{currency}}",
            ),
        ),
        row("Stripe webhooks"),
        timeseries(
            "Stripe events by type",
            "Verified Stripe events per second received at /v1/stripe/webhook, by event type.",
            "ops",
            target(
                "sum by (event_type) "
                "(rate(passiton_stripe_webhook_events_total[$__rate_interval]))",
                "{{event_type}}",
            ),
            stack=True,
        ),
        timeseries(
            "Stripe webhook problems",
            "Per second: signature failures by reason, duplicate events ignored, and failures "
            "of the application's own webhook handler by event type.",
            "ops",
            target(
                "sum by (reason) "
                "(rate(passiton_stripe_webhook_signature_failures_total[$__rate_interval]))",
                "bad signature: {{reason}}",
            ),
            target(
                "sum(rate(passiton_stripe_webhook_duplicate_events_total[$__rate_interval]))",
                "duplicates",
            ),
            target(
                "sum by (event_type) "
                "(rate(passiton_stripe_webhook_handler_failures_total[$__rate_interval]))",
                "handler failed: {{event_type}}",
            ),
        ),
    ]
    return dashboard(
        "passiton-payments",
        "PassItOn / Payments",
        "Payment attempts, failures, declines, timeouts and Stripe webhooks per organization.",
        panels,
        [
            query_variable(
                "organization",
                "Organization",
                "label_values(passiton_payment_attempts_total, organization_id)",
            )
        ],
    )
