"""Attack: blind the metrics with 100,000 made-up organizations and widgets.

Through the beacon, made-up ids have no valid key: refused, counted, never labels. Through the
authenticated events API (a compromised or buggy application), they fill the label bounds, but
organizations that keep sending keep their own series, the series of each metric stay within the
budget, resident memory stays within the stated bound, and once the junk stops arriving it is
forgotten and newcomers get their own series again.
"""

from __future__ import annotations

import time

import httpx

from exporter.beacon_keys import beacon_key
from tests.abuse.exporter_process import BEACON_SECRET, ORIGIN, TOKEN, exporter_process

JUNK = 100_000
REAL = [f"org-real-{i}" for i in range(20)]
IDLE_SECONDS = 5
SERIES_BUDGET = 20_000
# Stated bound (docs/security.md): resident memory of the exporter after the attack, with the
# default label bounds (1,000 organizations, 2,000 widgets) and series budget (20,000 a metric).
RSS_BOUND_BYTES = 256 * 1024 * 1024


def real_events() -> list[dict]:
    return [
        event
        for org in REAL
        for event in (
            {"type": "payment.succeeded", "organization_id": org},
            {"type": "widget.load_error", "organization_id": org, "widget_id": f"{org}-w"},
        )
    ]


def series_count(text: str, metric: str) -> int:
    return sum(1 for line in text.splitlines() if line.startswith(metric + "{"))


def test_junk_ids_cannot_squat_the_series_of_real_organizations():
    env = {
        "EXPORTER_LABEL_IDLE_SECONDS": str(IDLE_SECONDS),
        "EXPORTER_MAX_SERIES_PER_METRIC": str(SERIES_BUDGET),
    }
    with exporter_process(env) as exporter, httpx.Client(timeout=30) as http:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        events = f"{exporter.internal}/v1/events"
        assert http.post(events, json=real_events(), headers=auth).status_code == 202
        rss_before = exporter.rss_bytes()

        # 1. through the beacon: made-up ids with made-up (or borrowed) keys are all refused
        borrowed = beacon_key(BEACON_SECRET, REAL[0], f"{REAL[0]}-w")
        refused = 0
        for i in range(0, 2_000):
            batch = [
                {"type": "widget.load_error", "organization_id": f"junk-{i}-{j}", "widget_id": "x"}
                for j in range(20)
            ]
            key = borrowed if i % 2 else "v1." + "A" * 22
            response = http.post(
                f"{exporter.public}/v1/beacon",
                params={"key": key},
                json=batch,
                headers={"Origin": ORIGIN, "X-Forwarded-For": f"198.51.100.{i % 250}"},
            )
            refused += response.status_code in (403, 429)
            if i % 100 == 0:  # the real organizations keep sending
                assert http.post(events, json=real_events(), headers=auth).status_code == 202
        assert refused == 2_000
        text = exporter.metrics()
        assert "junk-" not in text

        # 2. through the authenticated API: 100,000 junk organizations, and 100,000 junk
        # (organization, widget) pairs, while the real organizations keep sending
        for start in range(0, JUNK, 500):
            junk = [
                event
                for i in range(start, start + 500)
                for event in (
                    {"type": "payment.failed", "organization_id": f"junk-org-{i}"},
                    # 100,000 distinct (organization, widget) pairs among admitted values:
                    # each label stays within its bound, the product is the attack
                    {
                        "type": "widget.load_error",
                        "organization_id": f"junk-org-{i % 1000}",
                        "widget_id": f"junk-widget-{i // 1000}",
                    },
                )
            ]
            assert http.post(events, json=junk, headers=auth).status_code == 202
            assert http.post(events, json=real_events(), headers=auth).status_code == 202
        text = exporter.metrics()
        rss_after = exporter.rss_bytes()
        for org in REAL:
            assert (
                f'passiton_payment_attempts_total{{organization_id="{org}",outcome="succeeded"}}'
                in text
            )
            labels = f'kind="load",organization_id="{org}",widget_id="{org}-w"'
            line = f"passiton_widget_errors_total{{{labels}}}"
            assert f"{line} 221.0" in text, [x for x in text.splitlines() if org in x]
        for metric in ("passiton_payment_attempts_total", "passiton_widget_errors_total"):
            assert series_count(text, metric) <= SERIES_BUDGET + 10, metric
        assert rss_after < RSS_BOUND_BYTES, (rss_before, rss_after)
        print(
            f"\nRSS before {rss_before / 2**20:.1f} MiB, "
            f"after {JUNK} junk ids {rss_after / 2**20:.1f} MiB"
        )

        # 3. the junk stops; after the idle time it is forgotten and a newcomer is admitted
        late = "org-arrived-after-the-attack"
        deadline = time.monotonic() + IDLE_SECONDS * 4
        while time.monotonic() < deadline:
            http.post(events, json=real_events(), headers=auth)
            http.post(
                events, json={"type": "payment.succeeded", "organization_id": late}, headers=auth
            )
            text = exporter.metrics()
            if f'organization_id="{late}"' in text and "junk-org-" not in text:
                break
            time.sleep(0.5)
        assert f'organization_id="{late}"' in text
        assert "junk-org-" not in text
        for org in REAL:
            assert f'organization_id="{org}"' in text
