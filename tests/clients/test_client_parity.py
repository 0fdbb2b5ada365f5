"""One table of calls (tests/data/client_cases.json) drives the Python and the TypeScript client.

Three real exporters: one fed by the Python client, one by the TypeScript client (a Node process
running clients/typescript/dist, built by `make test`), one by POSTing the table's wire events as
they are. All three must end with the same series: every call maps to exactly its documented event,
and the bad calls in the table change nothing in either client.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from passiton_monitoring_client import Monitoring
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import ExporterConfig
from tests import plain_http
from tests.exporter.live import running_exporter

ROOT = Path(__file__).resolve().parents[2]
CASES = json.loads((ROOT / "tests" / "data" / "client_cases.json").read_text())["cases"]
RUNNER = ROOT / "clients" / "typescript" / "test" / "support" / "run-cases.mjs"
DIST = ROOT / "clients" / "typescript" / "dist" / "index.js"
TOKEN = "parity-test-ingest-token-0123456789abcdef"
WAIT = 15.0
VALID = [case for case in CASES if case["event"] is not None]
BAD = [case for case in CASES if case["event"] is None]


def _config() -> ExporterConfig:
    return ExporterConfig.from_env({"EXPORTER_INGEST_TOKEN": TOKEN})


TIMING_METRICS = ("passiton_exporter_ingest_duration_seconds", "passiton_event_loop_lag_seconds")


def series(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The application-signal samples, without the ones that measure the exporter's own timing."""
    text = plain_http.get(f"{url}/metrics", timeout=10).text
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = sample.name
            if not name.startswith("passiton_") or name.endswith("_created"):
                continue
            if name.startswith(TIMING_METRICS):
                continue
            if sample.value:
                out[(name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def run_python(url: str) -> dict[str, int]:
    with Monitoring(url, token=TOKEN, flush_interval=3600) as monitoring:
        for case in CASES:
            target: Any = monitoring
            for part in case["python"]["call"].split("."):
                target = getattr(target, part)
            assert target(**case["python"]["kwargs"]) is None
        assert monitoring.flush(WAIT)
        return monitoring.stats.as_dict()


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.fail("node is required: `make test` installs it (Makefile debs)")
    if not DIST.exists():
        pytest.fail(f"{DIST} is missing: `make ts-build` builds the TypeScript client")
    return path


def run_typescript(node: str, url: str) -> dict[str, Any]:
    done = subprocess.run(
        [node, str(RUNNER)],
        input=json.dumps({"url": url, "token": TOKEN, "cases": CASES}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def post_raw(url: str) -> None:
    events = [case["event"] for case in VALID]
    response = plain_http.post(
        f"{url}/v1/events",
        json=events,
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    answer = response.json()
    assert answer == {"accepted": len(events), "rejected": 0, "errors": []}


def test_the_table_has_both_kinds_of_case() -> None:
    assert len(VALID) >= 12
    assert len(BAD) >= 8
    assert {case["event"]["type"] for case in VALID} >= {
        "payment.succeeded",
        "payment.failed",
        "payment.timeout",
        "stripe.webhook_failed",
        "widget.loaded",
        "widget.load_error",
        "widget.render_error",
        "widget.script_error",
        "traffic.request",
        "endpoint.request",
        "auth.failed",
        "database.error",
    }


def test_python_and_typescript_clients_produce_the_same_series_as_the_wire_events(
    node: str,
) -> None:
    with (
        running_exporter(_config()) as (python_url, _),
        running_exporter(_config()) as (ts_url, _),
        running_exporter(_config()) as (raw_url, _),
    ):
        python_stats = run_python(python_url)
        ts_stats = run_typescript(node, ts_url)
        post_raw(raw_url)
        expected = series(raw_url)
        python_series = series(python_url)
        ts_series = series(ts_url)

    counts = {"sent": len(VALID), "rejected": 0, "failed": 0, "invalid": len(BAD), "queued": 0}
    assert {k: python_stats[k] for k in counts} == counts
    assert ts_stats["flushed"] is True
    assert {k: ts_stats[k] for k in counts} == counts
    assert expected  # the table produced series at all
    assert python_series == expected
    assert ts_series == expected
