"""Attacks on the bridge, one test each, every defence asserted with a bound.

Redaction in linear time: every pattern of ``bridge/sanitize.py`` gets 16 KiB inputs built to
make a backtracking regex rescan the rest of the string from every start position. Before
issue 10 the worst of them took about 12 s each; the per-test timeout (a hang guard, not a speed
measurement: ``benchmarks/bridge_sanitize.py`` measures) fails such a regression, and each
secret appended after the adversarial text must still be redacted.
"""

from __future__ import annotations

import pytest

from bridge.sanitize import redact, redact_mapping
from tests.abuse.bridge_inputs import ADVERSARIAL, SECRETS

SIZE = 16 * 1024


def test_every_pattern_has_adversarial_inputs_and_a_secret() -> None:
    assert {pattern for pattern, _ in ADVERSARIAL} == set(SECRETS)


@pytest.mark.timeout(10)
@pytest.mark.parametrize(("pattern", "name"), sorted(ADVERSARIAL))
def test_redaction_of_16kib_adversarial_input(pattern: str, name: str) -> None:
    text = ADVERSARIAL[pattern, name](SIZE)
    assert len(text) == SIZE
    redact.cache_clear()
    redact(text)
    secret_text, secret = SECRETS[pattern]
    for attacked in (f"{text} {secret_text}", f"{secret_text} {text}"):
        out = redact(attacked)
        assert secret not in out, (pattern, name)
        assert "[REDACTED" in out
    assert secret not in str(redact_mapping({"description": f"{text} {secret_text}"}))
