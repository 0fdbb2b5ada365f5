"""The beacon's gate on its own, without HTTP: each check's verdict, in order, and the body read
only once every check that needs no body has passed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from exporter.config import ExporterConfig
from exporter.handlers.beacon_gate import (
    Accepted,
    BeaconGate,
    BeaconRefusal,
    BeaconRequest,
    Refusal,
)
from tests.exporter.support import BEACON_SECRET, key_for

ORIGIN = "https://donate.example.org"
EVENT = {"type": "widget.load_error", "organization_id": "o", "widget_id": "w"}
KEY = key_for("o", "w")


def gate(**overrides: Any) -> BeaconGate:
    overrides.setdefault("beacon_secret", BEACON_SECRET)
    overrides.setdefault("cors_origins", (ORIGIN,))
    return BeaconGate(ExporterConfig(development=True, **overrides))


def request(**overrides: Any) -> BeaconRequest:
    fields = {
        "origin": ORIGIN,
        "client": "198.51.100.7",
        "key": KEY,
        "content_type": "text/plain",
        "now": 1000.0,
    }
    return BeaconRequest(**{**fields, **overrides})


class Body:
    """A body reader that remembers whether (and with which limit) it was called."""

    def __init__(self, body: bytes | Refusal) -> None:
        self.body = body
        self.limits: list[int] = []

    async def __call__(self, limit: int) -> bytes | Refusal:
        self.limits.append(limit)
        return self.body


def events(*items: dict[str, Any]) -> Body:
    return Body(json.dumps(list(items)).encode())


async def test_a_good_beacon_is_accepted_with_its_text_cut():
    body = events({**EVENT, "error": "x" * 1000})
    verdict = await gate(beacon_text_length=10).check(request(), body)
    assert isinstance(verdict, Accepted)
    assert [e.error for e in verdict.events] == ["x" * 10]
    assert verdict.rejected == []
    assert verdict.is_batch
    assert body.limits == [16_384]


@pytest.mark.parametrize(
    ("config", "beacon", "status", "reason"),
    [
        ({}, {"origin": "https://evil.example"}, 403, "origin_not_allowed"),
        ({"beacon_secret": ""}, {}, 404, "not_configured"),
        ({}, {"key": ""}, 401, "missing_key"),
        ({}, {"key": "v1.short"}, 403, "malformed_key"),
        ({}, {"content_type": "application/xml"}, 415, "unsupported_content_type"),
    ],
)  # fmt: skip
async def test_refusals_before_the_body_never_read_it(config, beacon, status, reason):
    body = events(EVENT)
    verdict = await gate(**config).check(request(**beacon), body)
    assert isinstance(verdict, Refusal)
    assert (verdict.status, verdict.reason) == (status, reason)
    assert body.limits == []


@pytest.mark.parametrize(
    ("body", "status", "reason", "key"),
    [
        (Body(b"{not json"), 400, "invalid_json", False),
        (events(*[EVENT] * 21), 413, "batch_too_large", False),
        (events({**EVENT, "organization_id": "x"}), 403, "forged_key", True),
        (events(EVENT, {**EVENT, "widget_id": "w2"}), 403, "key_mismatch", True),
        (Body(Refusal(413, "too_large", "body is over 16384 bytes")), 413, "too_large", False),
    ],
)  # fmt: skip
async def test_refusals_of_the_body(body, status, reason, key):
    verdict = await gate().check(request(), body)
    assert isinstance(verdict, Refusal)
    assert (verdict.status, verdict.reason) == (status, reason)
    assert isinstance(verdict, BeaconRefusal) and verdict.key if key else True


async def test_a_widget_only_beacon_rejects_other_event_types_but_accepts_the_rest():
    verdict = await gate().check(request(), events(EVENT, {**EVENT, "type": "payment.failed"}))
    assert isinstance(verdict, Accepted)
    assert len(verdict.events) == 1
    assert [r.reason for r in verdict.rejected] == ["type_not_allowed"]


async def test_the_client_limit_comes_before_the_key_and_the_key_limit_after_it():
    by_client = gate(beacon_rate_per_minute=1)
    assert isinstance(await by_client.check(request(key=""), events(EVENT)), Refusal)
    verdict = await by_client.check(request(key=""), events(EVENT))
    assert isinstance(verdict, BeaconRefusal)
    assert (verdict.status, verdict.rate_limit) == (429, "client")

    by_key = gate(beacon_key_rate_per_minute=1)
    assert isinstance(await by_key.check(request(), events(EVENT)), Accepted)
    verdict = await by_key.check(request(client="203.0.113.9"), events(EVENT))
    assert isinstance(verdict, BeaconRefusal)
    assert (verdict.status, verdict.rate_limit) == (429, "key")
