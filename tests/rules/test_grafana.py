"""The Grafana provisioning and dashboards, checked statically: generated JSON up to date, every
panel complete (title, description, unit, ``${datasource}``, ``$__rate_interval``), every query
valid PromQL naming only series that exist. ``tests/e2e/test_dashboards_and_rollup.py`` runs
every query against a real Prometheus with traffic."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from bridge.metrics import BridgeMetrics
from exporter.metrics import ExporterMetrics
from grafana import build_dashboards

REPO = Path(__file__).resolve().parents[2]
DASHBOARD_DIR = REPO / "grafana" / "dashboards"
DASHBOARDS = {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARD_DIR.glob("*.json"))}
# Grafana's unit ids used here (Grafana's valueFormats); a typo would show raw numbers.
GRAFANA_UNITS = {"percentunit", "s", "ops", "reqps", "short", "bool_on_off", "none"}
# Series from outside this repository: Prometheus itself, the blackbox exporter, Alertmanager.
EXTERNAL_SERIES = {
    "up",
    "ALERTS",
    "probe_success",
    "probe_duration_seconds",
    "alertmanager_notifications_total",
    "alertmanager_notifications_failed_total",
}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "offset", "bool", "inf", "nan"}  # fmt: skip


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def all_panels() -> list[tuple[str, dict[str, Any]]]:
    return [(name, p) for name, d in DASHBOARDS.items() for p in panels(d)]


def known_series() -> set[str]:
    """Every series name the exporter and bridge expose and the recording rules record."""
    names = set(EXTERNAL_SERIES)
    exporter, bridge = CollectorRegistry(), BridgeMetrics().registry
    ExporterMetrics.create(exporter)
    for registry in (exporter, bridge):
        for family in registry.collect():
            names.add(family.name)
            suffixes = {
                "counter": ("_total",),
                "histogram": ("_bucket", "_count", "_sum"),
            }.get(family.type, ("",))
            names.update(family.name + s for s in suffixes)
    for path in (REPO / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names.update(r["record"] for r in group["rules"] if "record" in r)
    return names


def series_in(expr: str) -> set[str]:
    """The series names an expression selects (labels, strings, functions, keywords removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    tokens = re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?", text)
    return {
        name
        for name, call in tokens
        if not call and name.lower() not in PROMQL_WORDS and not name.startswith("$")
    }


def concrete(expr: str) -> str:
    """The query as Grafana sends it with every variable at "All"."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__range", "5m")
        .replace("${datasource}", "")
        .replace("$organization", ".*")
        .replace("$widget", ".*")
        .replace("$route", ".*")
        .replace("$channel", ".*")
    )


def test_generated_dashboards_are_up_to_date() -> None:
    assert build_dashboards.stale() == [], "run: python grafana/build_dashboards.py"
    assert set(DASHBOARDS) == set(build_dashboards.DASHBOARDS)


def test_the_required_dashboards_exist() -> None:
    titles = {d["title"] for d in DASHBOARDS.values()}
    assert titles == {
        "PassItOn / Payments",
        "PassItOn / Widgets",
        "PassItOn / Traffic",
        "PassItOn / API and uptime",
        "PassItOn / Alerting pipeline",
    }
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    for dashboard in DASHBOARDS.values():
        assert dashboard["description"]
        assert "passiton" in dashboard["tags"]


def test_every_panel_has_title_description_unit_and_the_datasource_variable() -> None:
    assert len(all_panels()) >= 60
    for name, panel in all_panels():
        where = f"{name}: {panel.get('title')!r}"
        assert panel["title"], where
        assert len(panel["description"]) >= 20, where
        assert panel["fieldConfig"]["defaults"]["unit"] in GRAFANA_UNITS, where
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel["targets"], where
        for t in panel["targets"]:
            assert t["datasource"]["uid"] == "${datasource}", where
            assert t["expr"].strip(), where
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(set(ref_ids)) == len(ref_ids), where


def test_every_dashboard_defines_the_datasource_variable_and_the_variables_it_uses() -> None:
    for name, dashboard in DASHBOARDS.items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        used = set()
        for panel in panels(dashboard):
            for t in panel["targets"]:
                used |= set(re.findall(r"\$(?!__)(\w+)", t["expr"]))
            used |= set(re.findall(r"\$(?!__)(\w+)", panel["title"]))
        assert used <= set(variables), f"{name} uses undefined variables {used - set(variables)}"
        for variable in variables.values():
            if variable["type"] == "query":
                assert variable["datasource"]["uid"] == "${datasource}"
                assert variable["allValue"] == ".*"
                assert re.fullmatch(r"label_values\(.+, \w+\)", variable["definition"])


def test_rates_use_the_rate_interval() -> None:
    for name, panel in all_panels():
        for t in panel["targets"]:
            for func, window in re.findall(r"\b(rate|irate|increase)\((?:[^()\[]*)\[([^\]]*)\]",
                                           t["expr"]):  # fmt: skip
                allowed = ("$__rate_interval",) + (("$__range",) if func == "increase" else ())
                assert window in allowed, f"{name}: {panel['title']!r}: {func}[{window}]"


def test_variables_are_matched_as_regexes() -> None:
    """With "All" a variable is ``.*``: it must be used with ``=~``, never ``=``."""
    for name, panel in all_panels():
        for t in panel["targets"]:
            for match in re.finditer(r'(\w+)\s*(=~|!~|=|!=)\s*"\$(?!__)\w+"', t["expr"]):
                assert match.group(2) == "=~", f"{name}: {panel['title']!r}: {match.group(0)}"


def test_queries_only_name_series_that_exist() -> None:
    known = known_series()
    for name, panel in all_panels():
        for t in panel["targets"]:
            unknown = series_in(t["expr"]) - known
            assert not unknown, f"{name}: {panel['title']!r} names unknown series {unknown}"
    assert series_in('sum by (a) (rate(x_total{b="c"}[1m])) / on (a) y') == {"x_total", "y"}


def test_recording_rules_are_reused_where_the_alerts_compare() -> None:
    recorded = {
        r["record"]
        for path in (REPO / "prometheus" / "rules").glob("*.yml")
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
        if "record" in r
    }
    used = {s for _, p in all_panels() for t in p["targets"] for s in series_in(t["expr"])}
    assert len(used & recorded) >= 25
    for required in (
        "organization:passiton_payment_failure_ratio:rate5m",
        "organization:passiton_payment_failure_ratio:threshold",
        "organization:passiton_traffic_requests:baseline_mean",
        "organization:passiton_traffic_requests:baseline_stddev",
        "platform:passiton_endpoint_error_ratio:rate1h",
        "organization:passiton_widget_load_error_ratio:rate5m",
    ):
        assert required in used


def test_every_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query (variables substituted) as a recording rule."""
    exprs = [concrete(t["expr"]) for _, panel in all_panels() for t in panel["targets"]]
    rules = [{"record": f"grafana:query_{i}", "expr": e} for i, e in enumerate(exprs)]
    path = tmp_path / "panels.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "grafana", "rules": rules}]}))
    result = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout + result.stderr


def test_panels_do_not_overlap() -> None:
    for name, dashboard in DASHBOARDS.items():
        taken: set[tuple[int, int]] = set()
        for panel in dashboard["panels"]:
            g = panel["gridPos"]
            assert g["x"] + g["w"] <= 24, (name, panel["title"])
            cells = {(x, y) for x in range(g["x"], g["x"] + g["w"])
                     for y in range(g["y"], g["y"] + g["h"])}  # fmt: skip
            assert not cells & taken, (name, panel["title"])
            taken |= cells


def test_traffic_has_baseline_bands_and_the_api_its_slo_burn() -> None:
    traffic = DASHBOARDS["traffic.json"]
    band = next(p for p in panels(traffic) if "baseline" in p["title"] and "repeat" in p)
    exprs = [t["expr"] for t in band["targets"]]
    assert any("baseline_mean" in e and "+ 2 * " in e for e in exprs)
    assert any("clamp_min" in e and "- 2 * " in e for e in exprs)
    fills = [
        prop["value"]
        for o in band["fieldConfig"]["overrides"]
        for prop in o["properties"]
        if prop["id"] == "custom.fillBelowTo"
    ]
    assert fills == ["lower"]
    burn = next(p for p in panels(DASHBOARDS["api.json"]) if p["title"] == "Error budget burn rate")
    assert {t["legendFormat"] for t in burn["targets"]} >= {"5m", "1h", "6h", "3d"}
    alerting = " ".join(t["expr"] for _, p in all_panels() for t in p["targets"])
    for series in ("passiton_bridge_deliveries_total", "passiton_bridge_queue_depth",
                   "passiton_bridge_dead_letters_total"):  # fmt: skip
        assert series in alerting


def test_datasource_provisioning_matches_prometheus() -> None:
    config = yaml.safe_load((REPO / "grafana/provisioning/datasources/prometheus.yml").read_text())
    (source,) = config["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "${PROMETHEUS_URL}"
    prometheus = yaml.safe_load((REPO / "prometheus/prometheus.yml").read_text())
    # $__rate_interval is four times this: it must be the real scrape interval
    assert source["jsonData"]["timeInterval"] == prometheus["global"]["scrape_interval"]


def test_dashboard_provider_reads_where_compose_mounts_the_dashboards() -> None:
    config = yaml.safe_load((REPO / "grafana/provisioning/dashboards/passiton.yml").read_text())
    (provider,) = config["providers"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    volumes = dict(
        v.split(":")[:2][::-1] for v in compose["services"]["grafana"]["volumes"]
    )  # container path → source
    assert volumes[provider["options"]["path"]] == "./grafana/dashboards"
    assert volumes["/etc/grafana/provisioning"] == "./grafana/provisioning"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_dashboard_json_is_a_grafana_model(name: str) -> None:
    dashboard = DASHBOARDS[name]
    assert dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in panels(dashboard):
        assert panel["type"] in ("timeseries", "stat")
        for t in panel["targets"]:
            assert t["refId"].isalpha()
