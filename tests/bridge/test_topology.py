"""The causal map (bridge/topology.yml) against the alert rules, and its validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bridge.topology import TopologyError, load_topology, parse_topology

RULES = Path(__file__).resolve().parents[2] / "prometheus" / "rules"


def rule_alertnames() -> set[str]:
    names = set()
    for path in RULES.glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {r["alert"] for r in group["rules"] if "alert" in r}
    return names


def test_every_alert_in_the_map_is_a_rule_and_every_rule_is_placed():
    topology = load_topology()
    rules = rule_alertnames()
    assert rules, "no alert rules found"
    assert topology.alertnames - rules == set(), "in the map but not in the rules"
    assert topology.unmapped - rules == set(), "unmapped but not in the rules"
    assert rules - topology.alertnames - topology.unmapped == set(), "neither placed nor unmapped"


def test_relations_follow_the_edges_both_ways_and_transitively():
    t = load_topology()
    assert t.related("DatabaseUnreachable", "ApiErrorRatioHigh")
    assert t.related("PaymentFailureRatioHigh", "DatabaseUnreachable")  # effect -> cause
    assert t.related("WidgetPlatformOutage", "TrafficDrop")  # through widgets
    assert t.related("DatabaseErrorsHigh", "DatabaseProbeSlow")  # one node
    assert not t.related("WidgetLoadErrorRatioHigh", "PaymentFailureRatioHigh")  # siblings
    assert not t.related("Watchdog", "Watchdog")  # unmapped: only the same name relates them
    level = t.level
    assert level("WidgetPlatformOutage") < level("WidgetLoadErrorRatioHigh") < level("TrafficDrop")
    assert level("DatabaseUnreachable") < level("ApiErrorRatioHigh")
    assert level("DatabaseUnreachable") < level("PaymentFailureRatioHigh")
    assert level("Watchdog") is None


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"nodes": {"a": "X"}}, "node 'a': expected a list"),
        ({"nodes": {"a": ["X"], "b": ["X"]}}, "node 'b': X is already in node 'a'"),
        ({"nodes": {"a": ["X"]}, "edges": {"b": ["a"]}}, "edge 'b': not a node"),
        ({"nodes": {"a": ["X"]}, "edges": {"a": ["c"]}}, "edge 'a' -> 'c': not a node"),
        ({"nodes": {"a": ["X"]}, "edges": {"a": ["a"]}}, "edge 'a' -> 'a'"),
        (
            {"nodes": {"a": ["X"], "b": ["Y"]}, "edges": {"a": ["b"], "b": ["a"]}},
            "a cycle",
        ),
        ({"nodes": {"a": ["X"]}, "unmapped": ["X"]}, "unmapped: X is also in node 'a'"),
        ({"nodez": {}}, "unknown key 'nodez'"),
    ],
)
def test_errors_name_the_entry(data, message):
    with pytest.raises(TopologyError, match=message):
        parse_topology(data)
