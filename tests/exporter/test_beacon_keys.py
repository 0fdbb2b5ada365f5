"""Beacon keys: the exporter's function and the Python client's copy agree with the shared vectors;
the beacon refuses missing, malformed, forged and mismatched keys, counted, never as labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from passiton_monitoring_client import beacon_key as client_beacon_key

from exporter import beacon_keys
from exporter.app import PUBLIC, RECORDER
from tests.exporter.support import all_samples, key_for, make_app, sample

VECTORS = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "beacon_key_vectors.json").read_text(
        encoding="utf-8"
    )
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: v["key"])
def test_exporter_and_client_reproduce_the_vectors(vector):
    args = (vector["secret"], vector["organization_id"], vector["widget_id"])
    assert beacon_keys.beacon_key(*args) == vector["key"]
    assert client_beacon_key(*args) == vector["key"]
    assert beacon_keys.well_formed(vector["key"])
    assert beacon_keys.verify(*args, vector["key"])


def test_pairs_that_concatenate_alike_have_different_keys():
    assert beacon_keys.beacon_key("s", "org-1", "23w") != beacon_keys.beacon_key(
        "s", "org-12", "3w"
    )
    with pytest.raises(ValueError, match="empty"):
        beacon_keys.beacon_key("", "o", "w")


EVENT = {"type": "widget.load_error", "organization_id": "org-real", "widget_id": "w-1"}
REAL = "?key=" + key_for("org-real", "w-1")


@pytest.mark.parametrize(
    ("query", "events", "status", "reason"),
    [
        ("", [EVENT], 401, "missing_key"),
        ("?key=", [EVENT], 401, "missing_key"),
        ("?key=v1.short", [EVENT], 403, "malformed_key"),
        ("?key=" + "v1." + "A" * 22, [EVENT], 403, "forged_key"),
        # a real key of one widget does not vouch for another organization or widget
        (REAL, [{**EVENT, "organization_id": "org-x"}], 403, "forged_key"),
        (REAL, [EVENT, {**EVENT, "widget_id": "w-2"}], 403, "key_mismatch"),
        ("?key=" + key_for("org-real", "w-1", "another-secret"), [EVENT], 403, "forged_key"),
    ],
)  # fmt: skip
async def test_bad_keys_are_refused_and_counted_never_labels(
    aiohttp_client, query, events, status, reason
):
    app = make_app()
    client = await aiohttp_client(app[PUBLIC])
    before = all_samples(app)
    response = await client.post(f"/v1/beacon{query}", json=events)
    assert response.status == status
    assert (await response.json())["error"] == reason
    changed = {k for k, v in all_samples(app).items() if before.get(k) != v}
    assert changed == {
        ("passiton_exporter_beacon_key_rejections_total", (("reason", reason),)),
        ("passiton_exporter_events_rejected_total", (("reason", reason), ("type", "unknown"))),
    }


async def test_a_valid_key_records_its_widget(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app[PUBLIC])
    response = await client.post(f"/v1/beacon?key={key_for('org-real', 'w-1')}", json=[EVENT] * 3)
    assert response.status == 202
    assert (
        sample(
            app,
            "passiton_widget_errors_total",
            organization_id="org-real",
            widget_id="w-1",
            kind="load",
        )
        == 3
    )
    assert sample(app, "passiton_widget_error_reports_total", channel="beacon") == 3


async def test_beacon_is_off_without_a_secret(aiohttp_client):
    client = await aiohttp_client(make_app(beacon_secret="")[PUBLIC])
    response = await client.post(f"/v1/beacon?key={key_for('o', 'w')}", json=EVENT)
    assert response.status == 404
    assert (await response.json())["error"] == "not_configured"


async def test_small_batches_only_and_free_text_cut(aiohttp_client):
    app = make_app()
    client = await aiohttp_client(app[PUBLIC])
    key = key_for("org-real", "w-1")
    too_many = await client.post(f"/v1/beacon?key={key}", json=[EVENT] * 21)
    assert too_many.status == 413
    too_big = await client.post(
        f"/v1/beacon?key={key}",
        data=json.dumps([EVENT]) + " " * 16_384,
        headers={"Content-Type": "text/plain"},
    )
    assert too_big.status == 413

    async def chunked():  # no Content-Length: the limit holds while reading
        for _ in range(64):
            yield b" " * 1024

    streamed = await client.post(
        f"/v1/beacon?key={key}", data=chunked(), headers={"Content-Type": "text/plain"}
    )
    assert streamed.status == 413
    recorded = []
    recorder = app[RECORDER]
    record = recorder.record
    recorder.record = lambda events: (recorded.extend(events), record(events))
    long_text = {**EVENT, "error": "x" * 2000, "url": "https://e.org/" + "p" * 2000}
    ok = await client.post(f"/v1/beacon?key={key}", json=long_text)
    assert ok.status == 202
    assert [(len(e.error), len(e.url), e.source) for e in recorded] == [(256, 256, None)]
