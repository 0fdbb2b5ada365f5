"""Attack: stall the event loop with text that makes a classifier slow.

Every classifier of outside text gets 16 KiB adversarial strings; the defence asserted is that no
regular expression and no crawlerdetect call ever sees more than its cap (routes and user agents
256 characters, free-text errors 512), and that crawlerdetect runs at most 16 times per batch
however many new agents it carries. The regexes themselves are linear on what remains; the
worst-case time per input is measured by benchmarks/adversarial_inputs.py (no timing here).
"""

from __future__ import annotations

from typing import Any

import pytest

from exporter import classify
from exporter.config import ExporterConfig
from exporter.edge import ClientAddress, parse_networks
from exporter.recorder import stripe_event_type_label
from exporter.vocab import clients, errors, failures, routes, tokens
from tests import plain_http
from tests.abuse.adversarial import SIZE, adversarial
from tests.exporter.live import live_exporter

TEXT_MAX = 512


class Spy:
    """A compiled pattern (or crawlerdetect) that records the length of what it is given."""

    def __init__(self, target: Any, seen: list[int]) -> None:
        self._target = target
        self._seen = seen

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._target, name)

        def call(text: str, *args: Any) -> Any:
            self._seen.append(len(text))
            return method(text, *args)

        return call


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    lengths: dict[str, list[int]] = {}
    patterns = {
        "_ID_SEGMENT": routes,
        "_SLUG": routes,
        "_TOKEN": tokens,
    }
    for name, module in patterns.items():
        monkeypatch.setattr(module, name, Spy(getattr(module, name), lengths.setdefault(name, [])))
    words = lengths.setdefault("_has_any", [])
    has_any = clients._has_any

    def spied_words(text: str, listed: tuple[str, ...]) -> bool:
        words.append(len(text))
        return has_any(text, listed)

    monkeypatch.setattr(clients, "_has_any", spied_words)
    monkeypatch.setattr(
        clients,
        "_crawler_detect",
        Spy(clients._crawler_detect, lengths.setdefault("crawlerdetect", [])),
    )
    for table, module in (("_TEXT_FAILURE_CLASS", failures), ("_TEXT_ERROR_CLASS", errors)):
        spied = tuple(
            (Spy(p, lengths.setdefault(table, [])), cls) for p, cls in getattr(module, table)
        )
        monkeypatch.setattr(module, table, spied)
    classify.client_class.cache_clear()
    classify.route_template.cache_clear()
    yield lengths
    classify.client_class.cache_clear()
    classify.route_template.cache_clear()


CAPS = {
    "_ID_SEGMENT": classify.ROUTE_MAX,
    "_SLUG": classify.ROUTE_MAX,
    "_has_any": classify.USER_AGENT_MAX,  # the tool and crawler words looked up in an agent
    "crawlerdetect": classify.USER_AGENT_MAX,
    "_TOKEN": SIZE,  # anchored, one character class, at most 64: linear on any input
    "_TEXT_FAILURE_CLASS": TEXT_MAX,
    "_TEXT_ERROR_CLASS": TEXT_MAX,
}


@pytest.mark.parametrize(("name", "text"), sorted(adversarial().items()))
def test_every_classifier_sees_capped_input_and_answers_a_bounded_label(seen, name, text):
    assert len(text) == SIZE
    answers = {
        classify.route_template(text),
        classify.client_class(text),
        classify.ClientClassifier()(text),
        classify.error_class(text),
        classify.failure_class(None, None, text),
        classify.failure_class(text, text, text),
        classify.country_label(text),
        classify.currency_label(text),
        classify.decline_code_label(text),
        classify.method_label(text),
        str(classify.token_label(text)),
        stripe_event_type_label(text),
    }
    assert all(len(a) <= 128 for a in answers), name
    for pattern, lengths in seen.items():
        assert max(lengths, default=0) <= CAPS[pattern], (pattern, max(lengths))
    assert seen["crawlerdetect"], "the user agent classifier ran"
    assert seen["_ID_SEGMENT"], "the route classifier ran"


def test_forwarded_for_is_read_a_bounded_way():
    resolve = ClientAddress(parse_networks(["127.0.0.1"])).resolve
    for text in adversarial().values():
        assert resolve("127.0.0.1", text) in ("127.0.0.1", text.rsplit(",", 1)[-1].strip())


def test_a_batch_of_new_agents_runs_crawlerdetect_a_bounded_number_of_times(seen):
    """Over HTTP, into the real exporter: 200 distinct 2 KiB agents and routes in one batch."""
    config = ExporterConfig(ingest_token="adversarial-token-0123456789")
    agents = adversarial(2048)
    events = []
    for i in range(200):
        text = agents[sorted(agents)[i % len(agents)]]
        events.append(
            {"type": "traffic.request", "organization_id": "o", "user_agent": f"{i} {text}"[:2048]}
        )
        events.append(
            {
                "type": "endpoint.request",
                "route": f"/{i}/{text}"[:2048],
                "method": "GET",
                "status": 200,
                "duration_ms": 1,
            }
        )
    with live_exporter(config) as exporter:
        response = plain_http.post(
            f"{exporter.internal}/v1/events",
            json=events,
            headers={"Authorization": f"Bearer {config.ingest_token}"},
            timeout=60,
        )
        assert response.status_code == 202
        assert response.json()["rejected"] == 0
    assert len(seen["crawlerdetect"]) <= 16
    assert max(seen["crawlerdetect"]) <= classify.USER_AGENT_MAX
    assert max(seen["_ID_SEGMENT"]) <= classify.ROUTE_MAX
