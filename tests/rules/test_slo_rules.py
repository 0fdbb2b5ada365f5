"""SLO burn-rate rules are generated from prometheus/slo.yml; the committed file is current."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from prometheus import generate_slo_rules as gen

ROOT = Path(__file__).resolve().parents[2]


def test_committed_rules_are_generated_from_the_spec() -> None:
    assert gen.render() == (ROOT / "prometheus" / "rules" / "slo.yml").read_text()
    check = subprocess.run(
        [sys.executable, "prometheus/generate_slo_rules.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_the_objective_is_written_once() -> None:
    """A 99.8 % objective doubles every threshold; nothing else holds 0.001."""
    spec = yaml.safe_load(gen.SPEC.read_text())
    relaxed = copy.deepcopy(spec)
    relaxed["slos"][0]["objective"] = 0.998
    text = gen.render(relaxed)
    assert "(14.4 * 0.002)" in text
    assert "(1 * 0.002)" in text
    assert "0.001" not in text
    assert "budget of 0.2% lasts less than 5 days" in text
    alerts = [
        rule
        for group in yaml.safe_load(text)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]
    assert [a["labels"]["severity"] for a in alerts] == ["critical", "medium"]


def test_a_stale_file_is_reported(tmp_path, monkeypatch) -> None:
    stale = tmp_path / "slo.yml"
    stale.write_text(gen.render().replace("14.4", "14"))
    monkeypatch.setattr(gen, "OUTPUT", stale)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0


def test_bad_objectives_are_refused() -> None:
    spec = yaml.safe_load(gen.SPEC.read_text())
    spec["slos"][0]["objective"] = 1.5
    with pytest.raises(ValueError, match="objective must be between 0 and 1"):
        gen.render(spec)
