"""/metrics is rendered by a cached renderer; it must say exactly what client_python would."""

from __future__ import annotations

from prometheus_client.exposition import generate_latest

from exporter.app import METRICS, RECORDER, REGISTRY
from exporter.events import EndpointRequest, PaymentFailed, TrafficRequest, WidgetLoaded
from exporter.exposition import CachedExposition
from tests.exporter.support import make_app


async def test_cached_rendering_is_byte_identical_to_client_python(aiohttp_client):
    app = make_app()
    recorder = app[RECORDER]
    tricky = ['org "quoted"', "org\\backslash", "org\nnewline", "org-ü"]
    recorder.record(
        [PaymentFailed(organization_id=o, decline_code="do_not_honor") for o in tricky]
        + [WidgetLoaded(organization_id=o, widget_id="w", duration_ms=700.0) for o in tricky]
        + [TrafficRequest(organization_id="o", ip="198.51.100.4")]
        + [EndpointRequest(route="/a/{id}", method="GET", status=200, duration_ms=3.0)]
    )
    client = await aiohttp_client(app)
    for _ in range(2):  # a second render uses the cached prefixes
        served = await (await client.get("/metrics")).read()
        assert served == generate_latest(app[REGISTRY])
        recorder.record([PaymentFailed(organization_id="org-new")])
    assert len(served.splitlines()) > 100


def test_every_metric_is_rendered():
    app = make_app()
    renderer = CachedExposition(app[METRICS].all())
    assert renderer.render() == generate_latest(app[REGISTRY])
