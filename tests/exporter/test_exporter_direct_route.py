"""``POST /v1/events`` is served by the internal listener straight to its handler, without the
router (``exporter.server``): over a real socket it answers every case as the application
routing it does, and every other method or path still goes through the router."""

from __future__ import annotations

import httpx
import pytest

from exporter.config import ExporterConfig
from tests.exporter.live import live_exporter

TOKEN = "direct-route-token-0123456789"
EVENT = {"type": "payment.failed", "organization_id": "org-direct", "decline_code": "do_not_honor"}


@pytest.fixture(scope="module")
def internal():
    with live_exporter(ExporterConfig(ingest_token=TOKEN, max_body_bytes=4096)) as live:
        yield live.internal


def test_the_direct_path_answers_every_case_as_the_router_would(internal: str) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=internal, timeout=30) as http:
        accepted = http.post("/v1/events", json=[EVENT, EVENT], headers=auth)
        assert (accepted.status_code, accepted.json()) == (
            202,
            {"accepted": 2, "rejected": 0, "errors": []},
        )
        assert http.post("/v1/events", json=EVENT).status_code == 401
        wrong = http.post(
            "/v1/events", content=b"{}", headers={**auth, "Content-Type": "text/plain"}
        )
        assert (wrong.status_code, wrong.json()["error"]) == (415, "unsupported_content_type")
        # a parameter or another case of the media type is still JSON
        typed = {**auth, "Content-Type": "Application/JSON; charset=utf-8"}
        assert http.post("/v1/events", content=b"[]", headers=typed).status_code == 202
        large = http.post("/v1/events", json=[EVENT] * 100, headers=auth)
        assert (large.status_code, large.json()["error"]) == (413, "too_large")
        invalid = http.post("/v1/events", json={"type": "payment.failed"}, headers=auth)
        assert (invalid.status_code, invalid.json()["error"]) == (400, "missing_field")
        metrics = http.get("/metrics").text
        assert (
            'passiton_payment_attempts_total{organization_id="org-direct",outcome="failed"} 2.0'
            in (metrics)
        )
        assert 'passiton_exporter_ingest_duration_seconds_count{endpoint="events"}' in metrics
        # other methods and paths: the router (405 with Allow, 404)
        method = http.get("/v1/events")
        assert (method.status_code, method.headers.get("Allow")) == (405, "POST")
        assert http.post("/v1/events/", json=EVENT, headers=auth).status_code == 404
