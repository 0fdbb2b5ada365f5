"""A page for beacon.js: tests/js/beacon_harness.js runs the snippet in Node on a simulated page
(a scenario in, what it sent and threw out), and what the tests expect of its events."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from exporter.beacon_keys import beacon_key
from tests.exporter.support import BEACON_SECRET

ROOT = Path(__file__).resolve().parents[2]
HARNESS = ROOT / "tests" / "js" / "beacon_harness.js"
BEACON = ROOT / "exporter" / "static" / "beacon.js"

ATTRS = {"data-organization-id": "org-1", "data-widget-id": "widget-9"}
SCRIPT = {"src": "https://exporter.example/v1/beacon.js", "attrs": ATTRS}
ENDPOINT = "https://exporter.example/v1/beacon"
PAGE = "https://example.org/give"
KEY = beacon_key(BEACON_SECRET, "org-1", "widget-9")
KEYED_SCRIPT = {"src": SCRIPT["src"], "attrs": {**ATTRS, "data-beacon-key": KEY}}


def run_page(node: str, steps: str = "", **scenario: Any) -> dict[str, Any]:
    scenario.setdefault("script", SCRIPT)
    scenario["steps"] = steps
    done = subprocess.run(
        [node, str(HARNESS)],
        input=json.dumps(scenario),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    result = json.loads(done.stdout)
    assert result["thrown"] == [], "beacon.js threw into the page"
    return result


def events(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event sent, without the (wall clock) timestamp, after checking it is there."""
    out = []
    for request in result["sent"]:
        for event in request["body"]:
            assert isinstance(event.pop("timestamp"), int)
            out.append(event)
    return out


def widget_event(type_: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": type_,
        "organization_id": "org-1",
        "widget_id": "widget-9",
        "url": PAGE,
        **fields,
    }
