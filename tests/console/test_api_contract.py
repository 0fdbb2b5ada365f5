"""schemathesis drives /api/v1/openapi.json against the bridge process: valid and invalid
parameters and bodies on every operation; each answer must match the document and none may
be a 5xx. Its own Alertmanager takes the silences it creates (the package's stays clean)."""

from __future__ import annotations

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from bridge.app import BRIDGE
from console.api.routes import ROUTES, openapi_document
from passiton_monitoring.bridge_process import create_bridge_app
from tests.bridge.support import T0, BridgeClient, Clock, make_config, notifiers
from tests.console.api_support import bearer, token_for
from tests.console.support import add_users, outage, real_alertmanager


@pytest.fixture(scope="module")
def contract_alertmanager():
    with real_alertmanager() as url:
        yield url


@pytest.fixture
async def served(db_url, aiohttp_client, contract_alertmanager):
    clock = Clock(T0)
    config = make_config(db_url, alertmanager_url=contract_alertmanager)
    app = create_bridge_app(config, notifiers=notifiers("slack"), clock=clock, workers=False)
    client = BridgeClient(
        await aiohttp_client(app), app[BRIDGE], {}, clock, alertmanager=contract_alertmanager
    )
    await add_users(client.bridge.storage, T0)
    await outage(client)
    return client


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
async def test_the_api_keeps_its_openapi_contract(served, mode):
    token = await token_for(served, "admin")
    document = await (await served.get("/api/v1/openapi.json")).json()
    schema = schemathesis.openapi.from_dict(document)
    base_url = str(served.make_url("/")).rstrip("/")
    headers = bearer(token)
    failures: list[str] = []

    # what the document cannot say: an alert cursor that is not one of ours (any string of
    # its characters is schema-valid) and a time the schedules cannot reach are 400
    loose = {("GET", "/alerts"), ("GET", "/oncall")}

    def run(method: str, path: str) -> None:
        operation = schema[f"/api/v1{path}"][method]

        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case):
            response = case.call(base_url=base_url, headers=headers)
            if response.status_code >= 500 and response.status_code != 502:
                failures.append(f"{method} {case.formatted_path}: {response.status_code}")
            assert response.status_code < 500 or response.status_code == 502
            if mode == GenerationMode.POSITIVE:
                excluded = [positive_data_acceptance] if (method, path) in loose else []
                case.validate_response(response, headers=headers, excluded_checks=excluded)
            elif response.status_code != 204:
                kind = " ".join(response.headers.get("content-type", []))
                assert kind.startswith("application/json"), (
                    f"{method} {case.formatted_path} {case.query} {response.status_code}:"
                    f" {kind!r} {response.text[:200]!r}"
                )

        check()

    for route in ROUTES:
        await asyncio.to_thread(run, route.method, route.path)
    assert failures == []


def test_the_document_tells_out_of_scope_from_missing():
    """403: a role too low, or an object outside the token's organizations (named as such in
    the answer); 404: only what does not exist."""
    for path, operations in openapi_document()["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "outside the token's organizations" in responses["403"]["description"], (
                method,
                path,
            )
            assert responses["404"]["description"] == "not found", (method, path)
