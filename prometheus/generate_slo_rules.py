"""Generates prometheus/rules/slo.yml (multi-window multi-burn-rate alerts) from slo.yml.

    python prometheus/generate_slo_rules.py           # rewrite rules/slo.yml
    python prometheus/generate_slo_rules.py --check   # exit 1 when rules/slo.yml is not current

The objective is written once, in slo.yml; every threshold below is burn_rate x (1 - objective).
Windows up to 6 hours are rates over the raw counters; longer ones are volume-weighted sums of the
recorded 5-minute rates, so a 3-day window does not read three days of raw samples.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
SPEC = HERE / "slo.yml"
OUTPUT = HERE / "rules" / "slo.yml"
RAW_WINDOW_LIMIT_SECONDS = 6 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds(duration: str) -> int:
    match = re.fullmatch(r"(\d+)([smhdw])", duration)
    if not match:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


def number(value: float) -> str:
    return format(round(value, 10), "g")


def _block(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


class _Literal(str):
    """A multi-line expression, dumped as a YAML block scalar."""


def _literal_representer(dumper: yaml.SafeDumper, data: _Literal) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", str(data), style="|")


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Literal, _literal_representer)


def _recording(slo: dict[str, Any]) -> list[dict[str, Any]]:
    prefix = f"platform:{slo['series']}"
    total, errors = slo["total"], slo["errors"]
    windows = {"5m"}
    for tier in slo["tiers"]:
        windows.add(tier["min_requests"]["window"])
        for pair in tier["windows"]:
            windows.update((pair["long"], pair["short"]))
    rules: list[dict[str, Any]] = []
    for window in sorted(windows, key=seconds):
        requests, errs, ratio = (
            f"{prefix}_requests:rate{window}",
            f"{prefix}_errors:rate{window}",
            f"{prefix}_error_ratio:rate{window}",
        )
        if seconds(window) <= RAW_WINDOW_LIMIT_SECONDS:
            rules.append({"record": requests, "expr": f"sum(rate({total}[{window}]))"})
            rules.append(
                {
                    "record": errs,
                    "expr": _Literal(f"sum(rate({errors}[{window}]))\nor 0 * {requests}\n"),
                }
            )
        else:
            rules.append(
                {"record": requests, "expr": f"avg_over_time({prefix}_requests:rate5m[{window}])"}
            )
            rules.append(
                {"record": errs, "expr": f"avg_over_time({prefix}_errors:rate5m[{window}])"}
            )
        rules.append({"record": ratio, "expr": f"{errs} / {requests}"})
    return rules


def _alert(slo: dict[str, Any], tier: dict[str, Any]) -> dict[str, Any]:
    prefix = f"platform:{slo['series']}"
    budget = 1 - float(slo["objective"])
    budget_text = number(budget)
    clauses = []
    for pair in tier["windows"]:
        threshold = f"({number(pair['burn_rate'])} * {budget_text})"
        clauses.append(
            f"{prefix}_error_ratio:rate{pair['long']} > {threshold}\n"
            f"and {prefix}_error_ratio:rate{pair['short']} > {threshold}"
        )
    guard = tier["min_requests"]
    body = "\nor\n".join(clauses)
    indented = "\n".join(f"  {line}" for line in body.splitlines())
    expr = (
        f"(\n{indented}\n)\n"
        f"and {prefix}_requests:rate{guard['window']} * {seconds(guard['window'])}"
        f" >= {guard['count']}\n"
    )
    longs = " or ".join(pair["long"] for pair in tier["windows"])
    slowest = min(float(pair["burn_rate"]) for pair in tier["windows"])
    period = slo["period"]
    budget_percent = f"{number(budget * 100)}%"
    if slowest > 1:
        days = seconds(period) / slowest / 86400
        outlook = f"lasts less than {number(days)} days"
    else:
        outlook = "runs out early"
    return {
        "alert": slo["alert"],
        "expr": _Literal(expr),
        "for": tier["for"],
        **({"keep_firing_for": tier["keep_firing_for"]} if "keep_firing_for" in tier else {}),
        "labels": {"severity": tier["severity"], "category": slo["category"], "slo": slo["name"]},
        "annotations": {
            "summary": tier["summary"],
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of {slo['subject']} failed over the long"
                f" window ({longs}): at this rate the {period.removesuffix('d')}-day budget of"
                f" {budget_percent} {outlook}."
            ),
            "runbook_url": f"docs/runbooks.md#{slo['alert'].lower()}",
        },
    }


def render(spec: dict[str, Any] | None = None) -> str:
    spec = spec if spec is not None else yaml.safe_load(SPEC.read_text())
    recording: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    for slo in spec["slos"]:
        objective = float(slo["objective"])
        if not 0 < objective < 1:
            raise ValueError(f"{slo['name']}: objective must be between 0 and 1")
        recording.extend(_recording(slo))
        alerts.extend(_alert(slo, tier) for tier in slo["tiers"])
    document = {
        "groups": [
            {"name": "passiton-slo-recording", "rules": recording},
            {"name": "passiton-slo-alerts", "rules": alerts},
        ]
    }
    header = (
        "# GENERATED by prometheus/generate_slo_rules.py from prometheus/slo.yml: do not edit.\n"
        "# Multi-window, multi-burn-rate alerts on the service level objectives of slo.yml.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=200)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail when rules/slo.yml is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(
                f"{OUTPUT} is stale: run python prometheus/generate_slo_rules.py",
                file=sys.stderr,
            )
            return 1
        return 0
    OUTPUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
