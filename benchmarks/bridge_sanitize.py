"""How fast the bridge redacts a typical alert's labels and annotations (it does so per alert).

Run: .venv/bin/python benchmarks/bridge_sanitize.py
Prints alerts/s for repeated values (the LRU cache's case) and for values unique per alert.
"""

from __future__ import annotations

import time

from bridge.sanitize import _redact_all, redact_mapping

LABELS = {
    "alertname": "PaymentFailureRateHigh",
    "severity": "critical",
    "category": "payment",
    "organization_id": "org-123",
    "instance": "exporter:9820",
    "job": "passiton-exporter",
    "decline_code": "insufficient_funds",
    "currency": "usd",
}


def annotations(k: int) -> dict[str, str]:
    return {
        "summary": f"Payment failure rate {k}% for org-{k}",
        "description": f"{k}.5% of payments failed over the last 5 minutes (threshold 5%).",
        "runbook_url": f"https://docs.passiton.test/runbooks#rule-{k}",
    }


def rate(label: str, n: int, one) -> None:
    started = time.perf_counter()
    for k in range(n):
        one(k)
    elapsed = time.perf_counter() - started
    print(f"{label:<44} {n / elapsed:>10,.0f} alerts/s  {elapsed / n * 1e6:6.1f} us/alert")


def main() -> None:
    n = 50_000
    fixed = annotations(7)
    rate(
        "repeated values (cache hits)", n, lambda k: (redact_mapping(LABELS), redact_mapping(fixed))
    )
    rate(
        "unique values (pre-check, no cache hits)",
        n,
        lambda k: (
            redact_mapping({**LABELS, "organization_id": f"org-{k}", "instance": f"h{k}:9820"}),
            redact_mapping(annotations(k)),
        ),
    )
    rate(
        "baseline: every regex on every value",
        n,
        lambda k: [
            _redact_all(v)
            for v in (*LABELS.values(), f"org-{k}", f"h{k}:9820", *annotations(k).values())
        ],
    )


if __name__ == "__main__":
    main()
