"""Silence matchers evaluated as Alertmanager evaluates them (anchored RE2, a missing label as
the empty string), and the bounds on what users type."""

from __future__ import annotations

import pytest

from bridge.storage.console import ConsoleUser
from console.silence_matchers import (
    MatcherProblem,
    SilenceMatcher,
    check,
    matches_all,
    may_set,
    visible_to,
)

LABELS = {"alertname": "PaymentFailureRatioHigh", "severity": "high", "organization_id": "org-a"}


@pytest.mark.parametrize(
    ("op", "name", "value", "hit"),
    [
        ("=", "severity", "high", True),
        ("=", "severity", "hig", False),
        ("!=", "severity", "high", False),
        ("=", "widget_id", "", True),  # missing: the empty string
        ("!=", "widget_id", "", False),
        ("=~", "alertname", "Payment.*", True),
        ("=~", "alertname", "Payment", False),  # anchored at both ends
        ("=~", "alertname", "Failure", False),
        ("=~", "alertname", "Db.*|Payment.*", True),  # the alternation is grouped
        ("!~", "severity", "critical|high", False),
        ("!~", "severity", "critical", True),
        ("=~", "widget_id", ".*", True),
        ("=~", "severity", "(?i)HIGH", True),  # RE2 flags, as in Go
    ],
)
def test_alertmanager_semantics(op, name, value, hit):
    assert SilenceMatcher.of(name, op, value).matches(LABELS) is hit


def test_a_backtracking_regex_is_linear_in_re2():
    # (a|a)*b against many a's takes exponential time in a backtracking engine; RE2 answers
    matcher = SilenceMatcher.of("value", "=~", "(a|a)*b")
    assert matcher.matches({"value": "a" * 100_000}) is False


@pytest.mark.parametrize(
    ("name", "op", "value", "problem"),
    [
        ("a", "=~", "(", "invalid regex"),
        ("a", "=~", "(?=x)", "invalid regex"),  # look-ahead: not RE2, not Alertmanager
        ("a", "=~", r"(x)\1", "invalid regex"),  # back-reference
        ("a", "=~", "x{1001}", "invalid regex"),  # RE2's (and Go's) repetition bound
        ("a", "=~", "x" * 513, "at most 512"),
        ("a", "=", "x" * 1025, "over 1024"),
        ("1a", "=", "x", "label name"),
        ("a", "==", "x", "operator"),
    ],
)
def test_what_users_type_is_bounded(name, op, value, problem):
    with pytest.raises(MatcherProblem, match=problem):
        SilenceMatcher.of(name, op, value)


def test_a_silence_must_not_match_everything():
    for matchers in ([], [SilenceMatcher.of("a", "=~", ".*"), SilenceMatcher.of("b", "=", "")]):
        with pytest.raises(MatcherProblem):
            check(matchers)
    check([SilenceMatcher.of("a", "=~", ".*"), SilenceMatcher.of("b", "=", "x")])
    assert matches_all([], LABELS)


def test_organization_pinning():
    limited = ConsoleUser("u", "", "responder", 0, ("org-a",))
    everyone = ConsoleUser("v", "", "responder", 0, None)
    pinned = [SilenceMatcher.of("organization_id", "=", "org-a")]
    regex = [SilenceMatcher.of("organization_id", "=~", "org-a")]
    two = [*pinned, SilenceMatcher.of("organization_id", "=", "org-b")]
    assert visible_to(limited, pinned)
    assert may_set(limited, pinned)
    assert not visible_to(limited, regex)
    assert not may_set(limited, regex)
    assert visible_to(limited, two)
    assert not may_set(limited, two)
    assert visible_to(everyone, regex)
    assert may_set(everyone, regex)
