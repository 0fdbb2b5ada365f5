"""How fast the bridge redacts a typical alert's labels and annotations (it does so per alert),
and its worst case on adversarial input.

Run: .venv/bin/python benchmarks/bridge_sanitize.py [--size 16384] [--no-old]
Prints alerts/s for repeated values (the LRU cache's case) and for values unique per alert; then,
for every adversarial input of tests/abuse/bridge_inputs.py, the time of one full redaction with
today's patterns and with the patterns before issue 10 side by side (``--no-old`` skips those:
at 16 KiB they take about a minute together), and the ratio old/new.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge import sanitize
from bridge.sanitize import _redact_all, redact_mapping
from tests.abuse.bridge_inputs import ADVERSARIAL

# The three patterns as they were before issue 10 (quadratic on long runs), for comparison.
OLD_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://[^\s:/?#@]*):([^\s/?#@]+)@")
OLD_JWT = re.compile(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]+")
OLD_KEY_VALUE = re.compile(
    rf"(?i)(?<![A-Za-z0-9])((?:[A-Za-z0-9]+[_\-])*(?:{sanitize._SECRET_NAMES}))(\s*[=:]\s*)"
    r"(\"[^\"]*\"|'[^']*'|[^\s&#,;\"'<>]+)"
)


def old_redact_all(text: str) -> str:
    """``bridge.sanitize._redact_all`` with the old patterns."""
    text = OLD_URL_PASSWORD.sub(lambda m: f"{m.group(1)}:{sanitize.REDACTED}@", text)
    text = sanitize._AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{sanitize.REDACTED}", text)
    for pattern in sanitize._KEY_PATTERNS[:-1]:
        text = pattern.sub(sanitize.REDACTED, text)
    text = OLD_JWT.sub(sanitize.REDACTED, text)
    text = OLD_KEY_VALUE.sub(sanitize._key_value, text)
    text = sanitize._CARD.sub(sanitize._card, text)
    return sanitize._EMAIL.sub(sanitize.REDACTED_EMAIL, text)


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


def best_of(runs: int, one, text: str) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        one(text)
        times.append(time.perf_counter() - started)
    return min(times)


def adversarial(size: int, old: bool) -> None:
    print(f"\nadversarial inputs of {size} characters, one full redaction (best of 3 / old: 1)")
    print(f"{'pattern':<22} {'input':<34} {'new ms':>9} {'old ms':>10} {'old/new':>9}")
    worst_new = worst_old = 0.0
    for (pattern, name), build in sorted(ADVERSARIAL.items()):
        text = build(size)
        new = best_of(3, _redact_all, text)
        worst_new = max(worst_new, new)
        if old:
            before = best_of(1, old_redact_all, text)
            worst_old = max(worst_old, before)
            extra = f"{before * 1e3:>10.1f} {before / new:>9.0f}"
        else:
            extra = ""
        print(f"{pattern:<22} {name:<34} {new * 1e3:>9.2f} {extra}")
    print(f"worst case per input: new {worst_new * 1e3:.2f} ms", end="")
    print(f", old {worst_old * 1e3:.0f} ms" if old else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16 * 1024)
    parser.add_argument("--no-old", action="store_true", help="skip the old patterns")
    args = parser.parse_args()
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
    adversarial(args.size, not args.no_old)


if __name__ == "__main__":
    main()
