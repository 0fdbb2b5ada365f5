"""Worst-case time of each exporter classifier on 16 KiB adversarial inputs, side by side with a
benign input of the same classifier (the baseline), in one run on this machine.

Each cell is the slowest of the adversarial strings of tests/abuse/adversarial.py (named), as the
median of ``--repeat`` runs of a fresh (uncached) call. For reference, the route-id regex the
exporter used before issue 10 is timed on the same strings cut to 2 KiB (the longest route the
events API accepts; at 16 KiB it takes seconds).

Then, with ``--stalls`` (or alone with ``--only-stalls``), the worst event-loop stall each kind of
request causes on both services, served in this process (``benchmarks/loop_stalls.py``): the
exporter's events, beacon, Stripe webhook and scrape, the bridge's 3.9 MB adversarial notification
and the console login (right and wrong password). The goal: none above 50 ms.

Run: `.venv/bin/python benchmarks/adversarial_inputs.py [--repeat 5] [--stalls|--only-stalls]
[--services exporter,bridge]` (the bridge needs PostgreSQL, see loop_stalls.py).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import loop_stalls
from exporter import classify
from exporter.edge import ClientAddress, parse_networks
from exporter.recorder import stripe_event_type_label
from tests.abuse.adversarial import adversarial

BENIGN = {
    "route": "/api/organizations/5f3a9c1e2b7d4a60/donations",
    "agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "text": "Your card was declined because of insufficient funds.",
    "forwarded": "198.51.100.7, 10.0.0.2",
}
_OLD_ID_SEGMENT = re.compile(
    r"^(\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{16,}"
    r"|[A-Za-z0-9_-]*\d[A-Za-z0-9_-]{10,}|[a-z]+_[A-Za-z0-9]{14,})$",
    re.I,
)
_proxies = ClientAddress(parse_networks(["127.0.0.1", "10.0.0.0/8"]))


def _past_budget(text: str) -> str:
    """What the recorder does for a new agent once the batch's crawlerdetect budget is spent
    (the first 16 new agents of a batch, or 20 ms of them, cost what the row above costs)."""
    return classify.ClientClassifier(thorough_per_batch=0)(text)


def _fresh(fn: Callable[[str], object]) -> Callable[[str], object]:
    def call(text: str) -> object:
        classify.client_class.cache_clear()
        classify.route_template.cache_clear()
        return fn(text)

    return call


CLASSIFIERS: dict[str, tuple[str, Callable[[str], object]]] = {
    "route_template": ("route", _fresh(classify.route_template)),
    "client_class (crawlerdetect)": ("agent", _fresh(classify.client_class)),
    "ClientClassifier, past budget": ("agent", _past_budget),
    "error_class": ("text", classify.error_class),
    "failure_class": ("text", lambda t: classify.failure_class(None, None, t)),
    "decline/failure codes": ("text", lambda t: classify.failure_class(t, t, None)),
    "token_label": ("text", classify.token_label),
    "stripe_event_type_label": ("text", stripe_event_type_label),
    "country/currency/method": (
        "text",
        lambda t: (classify.country_label(t), classify.currency_label(t), classify.method_label(t)),
    ),
    "X-Forwarded-For": ("forwarded", lambda t: _proxies.resolve("127.0.0.1", t)),
}


def timed(fn: Callable[[str], object], text: str, repeat: int, salt: bool) -> float:
    runs = []
    for i in range(repeat):
        value = f"{i}{text}"[: len(text)] if salt else text  # a new string: no cache helps
        started = time.perf_counter()
        fn(value)
        runs.append(time.perf_counter() - started)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--stalls", action="store_true", help="also the loop stalls per request")
    parser.add_argument("--only-stalls", action="store_true", help="only the loop stalls")
    parser.add_argument("--services", default="exporter,bridge")
    args = parser.parse_args()
    if not args.only_stalls:
        classifiers(args.repeat)
    if args.stalls or args.only_stalls:
        services = tuple(args.services.split(","))
        loop_stalls.report(asyncio.run(loop_stalls.run(args.repeat, services)))


def classifiers(repeat: int) -> None:
    args = argparse.Namespace(repeat=repeat)
    classify.client_class("warm up crawlerdetect")
    inputs = adversarial()
    print(f"{'classifier':<30} {'benign':>10} {'worst 16 KiB':>13} {'ratio':>7}  worst input")
    for name, (kind, fn) in CLASSIFIERS.items():
        benign = timed(fn, BENIGN[kind], args.repeat, salt=True)
        worst, which = max(
            (timed(fn, text, args.repeat, True), key) for key, text in inputs.items()
        )
        print(
            f"{name:<30} {benign * 1e6:>8.1f}us {worst * 1e6:>11.1f}us "
            f"{worst / benign:>6.1f}x  {which}"
        )
    at_2k = adversarial(2048)
    old = max(
        (timed(lambda t: _OLD_ID_SEGMENT.match(t[1:]), text, 1, False), key)
        for key, text in at_2k.items()
    )
    new = max(
        (timed(_fresh(classify.route_template), text, 1, True), key) for key, text in at_2k.items()
    )
    print(
        f"\nroute id rule before issue 10, at 2 KiB: {old[0] * 1e3:.1f} ms ({old[1]}); "
        f"now {new[0] * 1e3:.3f} ms ({new[1]})"
    )


if __name__ == "__main__":
    main()
