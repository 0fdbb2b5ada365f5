"""The exporter's recorder on payment batches, one checkout against another, side by side.

Each round runs ``Recorder.record`` of one checkout, then of the other, each in a fresh process,
on the same 200 batches of 1,000 payment events (20 organizations; 70 % declined with one of four
codes, each a new payment id, a third of them retried once; the rest succeeded): the best of 9
passes, in microseconds per batch. The ratio (candidate / baseline) is reported per round and as
the median, so that a shared machine's noise shows as spread rather than as a result. Used to
measure a change to the recorder's hot path against the commit before it:

    git worktree add /tmp/base HEAD~1
    .venv/bin/python benchmarks/recorder_checkouts.py --baseline /tmp/base [--rounds 6]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_CHECKOUT = """
import random, sys, time
sys.path.insert(0, sys.argv[1])
from exporter.config import ExporterConfig
from exporter.events import PaymentFailed, PaymentSucceeded
from tests.exporter.support import make_recorder

rng = random.Random(1)
numbers = iter(range(10**9))
codes = ["generic_decline", "insufficient_funds", "do_not_honor", "incorrect_cvc"]


def batch():
    out = []
    while len(out) < 1000:
        org = f"org-{rng.randrange(20)}"
        if rng.random() < 0.7:
            failed = PaymentFailed(
                organization_id=org, amount=2500, currency="usd",
                decline_code=rng.choice(codes), payment_id=f"pi_{next(numbers)}",
            )
            out.append(failed)
            if rng.random() < 0.3:
                out.append(failed)
        else:
            out.append(PaymentSucceeded(organization_id=org, amount=2500, currency="usd"))
    return out[:1000]


batches = [batch() for _ in range(200)]
now = [0.0]
recorder, _ = make_recorder(ExporterConfig(), lambda: now[0])
best = float("inf")
for _ in range(9):
    started = time.perf_counter()
    for events in batches:
        now[0] += 1.0
        recorder.record(events)
    best = min(best, time.perf_counter() - started)
print(best / len(batches) * 1e6)
"""


def per_batch(checkout: Path) -> float:
    done = subprocess.run(
        [sys.executable, "-c", ONE_CHECKOUT, str(checkout)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--candidate", type=Path, default=ROOT, help="this checkout (default)")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    ratios = []
    for n in range(args.rounds):
        base, cand = per_batch(args.baseline), per_batch(args.candidate)
        ratios.append(cand / base)
        print(f"round {n + 1}: baseline {base:.0f} us, candidate {cand:.0f} us, {cand / base:.3f}")
    print(f"median candidate/baseline: {statistics.median(ratios):.3f}")


if __name__ == "__main__":
    main()
