"""Prometheus configuration and rules: promtool checks, promtool unit tests, and the contract every
alert rule keeps (labels, annotations, runbook sections, test coverage, known metric names)."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import CollectorRegistry

from bridge.metrics import BridgeMetrics
from exporter.metrics import ExporterMetrics
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"

SEVERITIES = {"critical", "high", "medium", "low"}
# The bridge's contract: one table per category (bridge/model.py), anything else lands in
# system_alerts. Security signals are filed where their signal belongs (issue 18).
CATEGORIES = {"payment", "widget", "traffic", "dashboard", "system"}

# Series of Prometheus itself, Alertmanager and the blackbox exporter the rules may read.
OTHER_METRICS = {
    "up",
    "probe_success",
    "probe_duration_seconds",
    "ALERTS",
    "alertmanager_notifications_total",
    "alertmanager_notifications_failed_total",
    "prometheus_notifications_errors_total",
    "prometheus_notifications_sent_total",
    "prometheus_notifications_dropped_total",
    "prometheus_rule_evaluation_failures_total",
}
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "offset", "bool", "rate", "irate", "increase", "delta", "deriv",
    "absent", "absent_over_time", "avg_over_time", "max_over_time", "min_over_time",
    "sum_over_time", "count_over_time", "stddev_over_time", "quantile_over_time",
    "histogram_quantile", "label_replace", "clamp_min", "clamp_max", "clamp", "vector",
    "scalar", "time", "timestamp", "abs", "round", "sqrt", "changes", "resets", "le", "inf",
    "nan", "predict_linear", "last_over_time", "ln",
}  # fmt: skip


def load_yaml(text: str) -> Any:
    """``yaml.safe_load`` with libyaml's parser: the unit tests are 5,000 lines, which the pure
    Python parser takes a second of CPU over (in each worker that collects this module)."""
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506


def run(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(args[0])
    if binary is None:
        pytest.fail(f"{args[0]} is not installed (make debs installs it)")
    return subprocess.run([binary, *args[1:]], capture_output=True, text=True, timeout=240)


@cache
def rule_groups() -> list[dict[str, Any]]:
    groups = []
    for path in RULE_FILES:
        groups.extend(load_yaml(path.read_text())["groups"])
    return groups


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "record" in rule]


@cache
def unit_tests() -> list[dict[str, Any]]:
    return [load_yaml(path.read_text()) for path in TEST_FILES]


def runbook_anchors() -> set[str]:
    """GitHub's anchors for the headings of docs/runbooks.md."""
    anchors = set()
    for line in RUNBOOKS.read_text().splitlines():
        match = re.match(r"#+\s+(.*)", line)
        if match:
            title = match.group(1).strip().lower()
            anchors.add(re.sub(r"[^\w\- ]", "", title).replace(" ", "-"))
    return anchors


@cache
def exposed_metric_names() -> set[str]:
    """Every series name the exporter and the bridge can expose."""
    exporter = CollectorRegistry()
    ExporterMetrics.create(exporter)
    names = set()
    for family in [*exporter.collect(), *BridgeMetrics().registry.collect()]:
        names.update(sample.name for sample in family.samples)
        if family.type == "gauge":
            names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}_{s}" for s in ("bucket", "sum", "count"))
    return names


def test_prometheus_config_is_valid() -> None:
    result = run("promtool", "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    for path in RULE_FILES:
        assert f"rules/{path.name}" in result.stdout, "every rule file is loaded"


def test_prometheus_config_scrapes_every_service() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = {
        "passiton-exporter": "localhost:9820",
        "passiton-bridge": "localhost:9821",
        "prometheus": "localhost:9090",
        "alertmanager": "localhost:9093",
    }
    for name, target in expected.items():
        assert [t for sc in jobs[name]["static_configs"] for t in sc["targets"]] == [target]
    uptime = jobs["passiton-uptime"]
    assert uptime["metrics_path"] == "/probe"
    assert uptime["relabel_configs"][-1] == {
        "target_label": "__address__",
        "replacement": "localhost:9115",
    }
    modules = yaml.safe_load((PROMETHEUS / "blackbox.yml").read_text())["modules"]
    assert uptime["params"]["module"][0] in modules
    am_targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am_targets == ["localhost:9093"]


def test_blackbox_config_is_valid() -> None:
    result = run(
        "prometheus-blackbox-exporter",
        f"--config.file={PROMETHEUS / 'blackbox.yml'}",
        "--config.check",
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rules_pass_promtool_check(path: Path) -> None:
    result = run("promtool", "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.fixture(scope="module")
def promtool_runs() -> Iterator[dict[Path, subprocess.Popen[str]]]:
    """Every unit-test file's `promtool test rules`, started at once: the files run in parallel
    (each is one single-threaded evaluation), and each test below waits for its own. Go's
    garbage collector runs a quarter as often (GOGC=400; unless GOGC is set): a tenth less CPU
    for a little more memory, the same evaluation."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed (make debs installs it)")
    runs = {
        path: subprocess.Popen(
            [binary, "test", "rules", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={"GOGC": "400", **os.environ},
        )
        for path in sorted(TEST_FILES, key=lambda p: -p.stat().st_size)  # the longest first
    }
    yield runs
    for process in runs.values():
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests(path: Path, promtool_runs: dict[Path, subprocess.Popen[str]]) -> None:
    process = promtool_runs[path]
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    assert "SUCCESS" in output


def test_every_rule_file_is_unit_tested() -> None:
    tested = {
        (path.parent / rule_file).resolve()
        for path, suite in zip(TEST_FILES, unit_tests(), strict=True)
        for rule_file in suite["rule_files"]
    }
    assert {p.resolve() for p in RULE_FILES} <= tested


def test_unit_tests_evaluate_recording_rules_first() -> None:
    """Prometheus runs groups concurrently; the tests fix an order so an alert reads the values
    recorded at the same evaluation, and a group left out would make the order random."""
    names_by_file = {
        path.resolve(): [g["name"] for g in load_yaml(path.read_text())["groups"]]
        for path in RULE_FILES
    }
    for path, suite in zip(TEST_FILES, unit_tests(), strict=True):
        names = [n for f in suite["rule_files"] for n in names_by_file[(path.parent / f).resolve()]]
        assert sorted(suite.get("group_eval_order", [])) == sorted(names), path.name


def test_rule_names_are_unique_per_severity() -> None:
    seen = set()
    for rule in alert_rules():
        # tiers of one severity differ by the strength of their evidence (PaymentDeclineSurge)
        key = (rule["alert"], rule["labels"]["severity"], rule["labels"].get("evidence"))
        assert key not in seen, key
        seen.add(key)
    records = [rule["record"] for rule in recording_rules()]
    assert len(records) == len(set(records))


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']}")
def test_alert_rule_labels_and_annotations(rule: dict[str, Any]) -> None:
    labels, annotations = rule["labels"], rule["annotations"]
    assert labels["severity"] in SEVERITIES
    assert labels["category"] in CATEGORIES
    assert set(annotations) >= {"summary", "description", "runbook_url"}
    if rule["alert"] != "Watchdog":
        assert "$value" in annotations["description"], "the description says what tripped it"
    assert annotations["runbook_url"] == f"docs/runbooks.md#{rule['alert'].lower()}"
    if re.search(r"(?<![\w])organization:", rule["expr"]):
        assert "$labels.organization_id" in annotations["summary"]


def test_every_runbook_url_has_a_section() -> None:
    anchors = runbook_anchors()
    missing = {
        rule["annotations"]["runbook_url"]
        for rule in alert_rules()
        if rule["annotations"]["runbook_url"].split("#", 1)[1] not in anchors
    }
    assert not missing


def test_every_runbook_section_says_how_to_silence() -> None:
    text = RUNBOOKS.read_text()
    for name in {rule["alert"] for rule in alert_rules()}:
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert f"amtool silence add alertname={name}" in section, name


def test_every_alert_has_firing_and_quiet_cases() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for suite in unit_tests():
        for case in suite["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert names - firing == set(), "alerts never tested firing"
    # the Watchdog fires always, by design: it has no quiet case
    assert names - quiet == {"Watchdog"}, "alerts never tested quiet"


def test_every_severity_of_an_alert_is_tested_firing() -> None:
    fired = set()
    for suite in unit_tests():
        for case in suite["tests"]:
            for check in case.get("alert_rule_test", []):
                for alert in check.get("exp_alerts") or []:
                    fired.add((check["alertname"], alert["exp_labels"]["severity"]))
    rules = {(rule["alert"], rule["labels"]["severity"]) for rule in alert_rules()}
    assert rules - fired == set()


def test_every_recording_rule_is_tested() -> None:
    """Each recorded series is checked by value, or read by an alert that is tested."""
    exprs = [
        check["expr"]
        for suite in unit_tests()
        for case in suite["tests"]
        for check in case.get("promql_expr_test", [])
    ]
    exprs += [rule["expr"] for rule in alert_rules()]
    # a recorded series read by another recording rule counts when that one is covered
    readers = {rule["record"]: rule["expr"] for rule in recording_rules()}
    covered: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name in readers:
            if name in covered:
                continue
            pattern = re.compile(rf"(?<![\w:]){re.escape(name)}(?![\w:])")
            used = any(pattern.search(e) for e in exprs) or any(
                pattern.search(readers[other]) for other in covered
            )
            if used:
                covered.add(name)
                changed = True
    assert set(readers) - covered == set()


def metric_names(expr: str) -> set[str]:
    without_strings = re.sub(r'"[^"]*"', "", expr)
    without_matchers = re.sub(r"\{[^}]*\}", "", without_strings)
    without_ranges = re.sub(r"\[[^\]]*\]", "", without_matchers)
    without_groupings = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", without_ranges
    )
    without_offsets = re.sub(r"\boffset\s+\w+", "", without_groupings)
    tokens = re.findall(r"(?<![\w.])[A-Za-z_:][\w:]*", without_offsets)
    return {t for t in tokens if t not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", t)}


def test_rules_read_only_known_series() -> None:
    known = exposed_metric_names() | OTHER_METRICS
    known |= {rule["record"] for rule in recording_rules()}
    unknown = {}
    for group in rule_groups():
        for rule in group["rules"]:
            names = metric_names(rule["expr"]) - known
            if names:
                unknown[rule.get("alert") or rule["record"]] = names
    assert unknown == {}


def test_alerts_read_recorded_series() -> None:
    """Rates and ratios are computed once, in recording rules; alerts compare recorded series."""
    for rule in alert_rules():
        assert not re.search(r"\b(rate|increase|irate)\(", rule["expr"]), rule["alert"]


def test_recording_rules_aggregate_away_instances() -> None:
    for rule in recording_rules():
        expr = rule["expr"]
        if re.search(r"\b(rate|increase)\(passiton_", expr):
            assert re.search(r"\b(sum|count|max|min|avg) (by|without) \(", expr) or re.search(
                r"\bsum\(", expr
            ), rule["record"]


def test_traffic_baseline_tests_are_generated() -> None:
    path = PROMETHEUS / "tests" / "generate_traffic_baseline.py"
    spec = importlib.util.spec_from_file_location("generate_traffic_baseline", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == (PROMETHEUS / "tests" / "traffic_baseline_test.yml").read_text()


def test_rules_load_and_evaluate_in_real_prometheus(tmp_path: Path) -> None:
    """prometheus.yml's rule files in the real Prometheus: every group loads and every rule
    evaluates without error (over Prometheus's own series; the end-to-end tests add traffic)."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed (make debs installs it)")
    log = tmp_path / "prometheus.log"
    groups = None
    for _attempt in range(3):  # another process may take the free port before Prometheus does
        port = free_port()
        config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
        config["global"]["evaluation_interval"] = "1s"
        config["rule_files"] = [str(PROMETHEUS / pattern) for pattern in config["rule_files"]]
        config.pop("alerting")
        config["scrape_configs"] = [
            {
                "job_name": "prometheus",
                "scrape_interval": "1s",
                "static_configs": [{"targets": [f"127.0.0.1:{port}"]}],
            }
        ]
        (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
        with log.open("w") as stderr:
            process = subprocess.Popen(
                [
                    binary,
                    f"--config.file={tmp_path / 'prometheus.yml'}",
                    f"--storage.tsdb.path={tmp_path / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        try:
            groups = evaluated_rule_groups(f"http://127.0.0.1:{port}", process)
        finally:
            process.terminate()
            process.wait(timeout=30)
        if groups is not None:
            break
    if groups is None:
        pytest.fail(f"prometheus did not start:\n{log.read_text()}")
    expected = {group["name"]: len(group["rules"]) for group in rule_groups()}
    assert {g["name"]: len(g["rules"]) for g in groups} == expected
    errors = {
        rule["name"]: rule.get("lastError")
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    }
    assert errors == {}


def evaluated_rule_groups(url: str, process: subprocess.Popen[bytes]) -> list[Any] | None:
    """Our Prometheus's rule groups once every group has been evaluated at least twice; None
    when the process exited (or the port answers with another Prometheus's rules)."""
    first: dict[str, str] = {}
    deadline = time.monotonic() + 120
    # one client for every poll: httpx.get builds a TLS context per call (50 ms of CPU)
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return None
            try:
                response = http.get(f"{url}/api/v1/rules")
            except httpx.TransportError:
                response = None
            if response is None or response.status_code != 200:
                time.sleep(0.05)
                continue
            groups = response.json()["data"]["groups"]
            if any(not g["file"].startswith(str(PROMETHEUS)) for g in groups):
                return None
            evaluations = {f"{g['file']}/{g['name']}": g["lastEvaluation"] for g in groups}
            if groups and not any(t.startswith("0001") for t in evaluations.values()):
                first = first or evaluations
                if all(evaluations[k] != first[k] for k in evaluations):
                    return groups
            time.sleep(0.1)
    pytest.fail("the rule groups were not evaluated")


def test_runbook_has_one_section_per_alert() -> None:
    sections = re.findall(r"^## ([A-Z][A-Za-z]+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    alerts = [name for name in sections if name not in {"Silencing"}]
    assert len(alerts) == len(set(alerts)), "one section each"
    assert set(alerts) == {rule["alert"] for rule in alert_rules()}


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda r: f"{r['alert']}-{r['labels']}")
def test_ratio_alerts_have_for_a_volume_guard_and_hysteresis(rule: dict[str, Any]) -> None:
    """A ratio of few events is noise: 1 failure out of 2 payments at 3 a.m. pages no one.
    Either a minimum number of events and a `for`, or a significance test (the evidence
    against the organization's baseline, recorded as `:evidence5m`) that weighs the volume, or
    a strong tier (a minimum number of events and a threshold far past its sustained tier's,
    which keeps its `for`: TrafficSuspiciousSourceConcentration's four fifths of 500 requests
    from the heaviest sources)."""
    if re.search(r"(?<![a-z])(ratio|share)", rule["expr"]):
        # hysteresis: a ratio hovering at its threshold pages once, not each time it crosses
        assert "keep_firing_for" in rule
        if re.search(r":evidence5m\s*>\s*\d+", rule["expr"]):
            return
        assert re.search(r">=\s*\d+", rule["expr"]), "a minimum number of events"
        if rule["labels"].get("evidence") == "strong":
            assert "for" not in rule
            assert any(
                other["alert"] == rule["alert"]
                and other["labels"].get("evidence") == "sustained"
                and "for" in other
                for other in alert_rules()
            ), "a strong tier without a significance test needs a sustained tier with a `for`"
            return
        assert "for" in rule
