"""make mutate-rules: mutation testing of the Prometheus rules against their promtool tests.

Every threshold compared against, every range window and every `for` / `keep_firing_for` duration
of every rule is halved and doubled, one at a time; a mutant is killed when a promtool test case
of its rule file fails (each case runs on its own, the cheapest first, until one fails). Prints
the surviving mutants and the score; exits 1 under --min-score.

    python -m backtest.mutate [--jobs 2] [--min-score 0.9] [--only payment.yml]

Mutants listed in prometheus/mutation-equivalents.yml (with the reason each is equivalent)
are excluded from the score.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from backtest.alerts import duration

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "prometheus"
EQUIVALENTS = PROMETHEUS / "mutation-equivalents.yml"
# A number compared against: `> 0.5`, `>= 5`, `> (14.4 * 0.001)`, `> 3 * baseline`.
_THRESHOLD = re.compile(r"(?:>=|<=|==|!=|>|<)\s*\(?\s*(\d+(?:\.\d+)?)(?![\w.])")
_WINDOW = re.compile(r"\[(\d+[smhdw])\]")


@dataclass(frozen=True)
class Mutant:
    file: str
    group: int
    rule: int
    name: str  # the rule's alert or record name
    field: str  # expr, for, keep_firing_for
    start: int  # span of the mutated text within the field (expr only)
    end: int
    old: str
    new: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.name}:{self.field}:{self.old}->{self.new}@{self.start}"


def _fmt_duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def _number(value: float) -> str:
    return format(value, "g")


def mutants(path: Path) -> list[Mutant]:
    found = []
    groups = yaml.safe_load(path.read_text())["groups"]
    for g, group in enumerate(groups):
        for r, rule in enumerate(group["rules"]):
            name = rule.get("alert") or rule["record"]
            if "alert" in rule:
                name = f"{name}/{rule.get('labels', {}).get('severity', '')}"
            expr = rule["expr"]
            for m in _THRESHOLD.finditer(expr):
                value = float(m.group(1))
                if value == 0:
                    continue
                for new in (value / 2, value * 2):
                    found.append(
                        Mutant(path.name, g, r, name, "expr", *m.span(1), m.group(1), _number(new))
                    )
            for m in _WINDOW.finditer(expr):
                seconds = duration(m.group(1))
                for new in (seconds / 2, seconds * 2):
                    found.append(
                        Mutant(
                            path.name, g, r, name, "expr", *m.span(1), m.group(1),
                            _fmt_duration(new),
                        )
                    )  # fmt: skip
            for field in ("for", "keep_firing_for"):
                if field in rule:
                    seconds = duration(str(rule[field]))
                    for new in (seconds / 2, seconds * 2):
                        found.append(
                            Mutant(
                                path.name, g, r, name, field, 0, 0, str(rule[field]),
                                _fmt_duration(new),
                            )
                        )  # fmt: skip
    return found


def apply(text: str, mutant: Mutant) -> str:
    document: dict[str, Any] = yaml.safe_load(text)
    rule = document["groups"][mutant.group]["rules"][mutant.rule]
    if mutant.field == "expr":
        expr = rule["expr"]
        rule["expr"] = expr[: mutant.start] + mutant.new + expr[mutant.end :]
    else:
        rule[mutant.field] = mutant.new
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def _cost(case: dict[str, Any], interval: float) -> float:
    """Evaluations promtool makes for one test case: its last evaluation time / the interval."""
    times = [
        duration(str(check["eval_time"]))
        for key in ("alert_rule_test", "promql_expr_test")
        for check in case.get(key) or []
    ]
    return max(times, default=0) / interval


def split_cases(tests_dir: Path, out: Path) -> dict[str, list[Path]]:
    """Each promtool test case in a file of its own under ``out``, by rule file, the cheapest
    first: a mutant is killed by the first failing case, so most never run the slow ones."""
    by_rule: dict[str, list[tuple[float, Path]]] = {}
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(tests_dir.glob("*_test.yml")):
        suite = yaml.safe_load(path.read_text())
        interval = duration(str(suite.get("evaluation_interval", "1m")))
        rule_files = [str((tests_dir / f).resolve()) for f in suite.get("rule_files", [])]
        for index, case in enumerate(suite["tests"]):
            single = {**suite, "rule_files": rule_files, "tests": [case]}
            target = out / f"{path.stem}-{index:02d}.yml"
            target.write_text(yaml.safe_dump(single, sort_keys=False, width=1000))
            for rule_file in suite.get("rule_files", []):
                by_rule.setdefault(Path(rule_file).name, []).append((_cost(case, interval), target))
    return {name: [p for _, p in sorted(cases)] for name, cases in by_rule.items()}


def killed(mutant: Mutant, workdir: Path, cases: dict[str, list[Path]]) -> bool:
    rules = workdir / "rules" / mutant.file
    original = (PROMETHEUS / "rules" / mutant.file).read_text()
    rules.write_text(apply(original, mutant))
    try:
        for case in cases.get(mutant.file, []):
            result = subprocess.run(
                ["promtool", "test", "rules", str(case)],
                capture_output=True,
                text=True,
                timeout=600,
            )
            if result.returncode != 0:
                return True
        return False
    finally:
        rules.write_text(original)


def load_equivalents() -> dict[str, str]:
    if not EQUIVALENTS.exists():
        return {}
    entries = yaml.safe_load(EQUIVALENTS.read_text()) or []
    return {entry["mutant"]: entry["reason"] for entry in entries}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backtest.mutate", description=__doc__)
    parser.add_argument("--jobs", type=int, default=2, help="promtool processes at once (2)")
    parser.add_argument("--min-score", type=float, default=0.0)
    parser.add_argument("--only", action="append", help="rule file name(s) to mutate")
    args = parser.parse_args(argv)
    if shutil.which("promtool") is None:
        print("promtool is not installed (make debs installs it)", file=sys.stderr)
        return 2
    files = sorted((PROMETHEUS / "rules").glob("*.yml"))
    if args.only:
        files = [f for f in files if f.name in args.only]
    all_mutants = [m for f in files for m in mutants(f)]
    equivalents = load_equivalents()
    clock = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mutate-") as tmp:
        workdirs, cases = [], []
        for i in range(max(1, args.jobs)):
            work = Path(tmp) / str(i)
            shutil.copytree(PROMETHEUS / "rules", work / "rules")
            shutil.copytree(PROMETHEUS / "tests", work / "tests")
            workdirs.append(work)
            cases.append(split_cases(work / "tests", work / "cases"))
        chunks = [all_mutants[i :: len(workdirs)] for i in range(len(workdirs))]

        def run_chunk(index: int) -> list[tuple[Mutant, bool]]:
            return [(m, killed(m, workdirs[index], cases[index])) for m in chunks[index]]

        with ThreadPoolExecutor(len(workdirs)) as pool:
            results = [r for chunk in pool.map(run_chunk, range(len(workdirs))) for r in chunk]
    survivors = [m for m, k in results if not k]
    excused = [m for m in survivors if m.id in equivalents]
    counted = len(results) - len(excused)
    score = (counted - (len(survivors) - len(excused))) / counted if counted else 1.0
    for m in survivors:
        reason = equivalents.get(m.id)
        print(f"survived: {m.id}" + (f"  (equivalent: {reason})" if reason else ""))
    print()
    for f in files:
        mine = [(m, k) for m, k in results if m.file == f.name]
        counted_here = [(m, k) for m, k in mine if k or m.id not in equivalents]
        killed_here = sum(k for _, k in counted_here)
        share = killed_here / len(counted_here) if counted_here else 1.0
        print(f"{f.name}: {len(mine)} mutants, {killed_here} killed, {share:.1%}")
    print(
        f"\n{len(results)} mutants, {len(results) - len(survivors)} killed, {len(survivors)} "
        f"survived ({len(excused)} listed as equivalent): mutation score {score:.1%} "
        f"in {time.monotonic() - clock:.0f}s"
    )
    return 1 if score < args.min_score else 0


if __name__ == "__main__":
    sys.exit(main())
