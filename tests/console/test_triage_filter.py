"""The Now page's filter, pure: the filter bar's matcher syntax (``bridge.matchers.
parse_filter``), what ``console/triage.py`` refuses and how ``@state`` decides, the links it
builds, and the SQL the label matchers become (user text only ever in the parameters)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.matchers import Matcher, MatcherError, parse_filter
from bridge.storage.console import AlertRow
from bridge.storage.console_now import now_alerts_sql
from console.triage import (
    FilterError,
    PageOptions,
    alert_states,
    parse_now_filter,
    refine,
)


def test_the_filter_bar_takes_spaces_commas_and_braces():
    expected = (Matcher("severity", "=", "critical"), Matcher("category", "=~", "payment|widget"))
    for text in (
        'severity="critical" category=~"payment|widget"',
        'severity="critical",category=~"payment|widget"',
        '{severity="critical", category=~"payment|widget"}',
        "  severity=critical   category=~payment|widget ",
    ):
        assert parse_filter(text) == expected, text
    assert parse_filter("") == ()
    assert parse_filter("{}") == ()
    with pytest.raises(MatcherError, match="unknown name '@state'"):
        parse_filter("@state=active")
    assert parse_filter("@state=active", specials=("@state",)) == (
        Matcher("@state", "=", "active"),
    )
    with pytest.raises(MatcherError, match="after the closing"):
        parse_filter('{a="b"} c="d"')


def test_a_leading_case_flag_is_taken_as_re2_takes_it():
    m = Matcher("alertname", "=~", "(?i)payment.*")
    assert m.matches({"alertname": "PaymentFailureRatioHigh"})
    assert not m.matches({"alertname": "WidgetSlow"})


def test_state_matchers_choose_among_the_six_states():
    f = parse_now_filter("@state=acknowledged|silenced")
    firing_acked = frozenset({"firing", "acknowledged"})
    assert f.names_states
    assert f.admits(firing_acked)
    assert not f.admits(frozenset({"firing", "active"}))
    assert parse_now_filter("@state!=active").admits(firing_acked)
    assert parse_now_filter('@state=~"ack.*|inhib.*"').admits(firing_acked)
    assert not parse_now_filter('@state!~"ack.*"').admits(firing_acked)
    assert not parse_now_filter('severity="high"').names_states


@pytest.mark.parametrize(
    ("typed", "named"),
    [
        ('a=~"(x)\\\\1"', "back-references"),
        ('a=~"(?<=x)y"', "look-ahead or look-behind"),
        ('a=~"(?!x)y"', "look-ahead or look-behind"),
        ('a=~"(?>x)"', "atomic groups"),
        ('a=~"x*+"', "possessive"),
        ('a=~"' + "x" * 257 + '"', "over 256"),
        ("x" * 1001, "over 1000"),
        ("@state=sleeping", "unknown state"),
    ],
)
def test_what_the_filter_refuses(typed, named):
    with pytest.raises(FilterError, match=named):
        parse_now_filter(typed)


def test_escaped_characters_are_not_taken_for_refused_constructs():
    f = parse_now_filter('a=~"\\\\(\\\\?=x\\\\)"')  # the regex \(\?=x\): literal text
    assert f.labels[0].value == "\\(\\?=x\\)"


def test_links_add_one_matcher_and_keep_the_page_options():
    assert refine('severity="high" organization_id="a"', "organization_id", "b") == (
        'severity="high" organization_id="b"'
    )
    assert refine('organization_id!="a"', "organization_id", 'b"c') == (
        'organization_id!="a" organization_id="b\\"c"'
    )
    assert refine("not a filter", "severity", "low") == 'severity="low"'
    options = PageOptions('severity="high"', show_all=True, by_name=True)
    assert options.link(show_all=False) == "?q=severity%3D%22high%22&group=name"
    assert options.refined("organization_id", "o") == (
        "?q=severity%3D%22high%22+organization_id%3D%22o%22&all=1&group=name"
    )
    assert PageOptions().link() == "?"
    assert PageOptions().path("/console") == "/console/"
    assert PageOptions.of({"q": "a=b", "all": "1", "group": "name"}) == PageOptions(
        "a=b", True, True
    )


def test_label_matchers_become_parameters_never_sql_text():
    evil = "x'; DROP TABLE payment_alerts; --"
    matchers = parse_now_filter(
        f'severity="{evil}" team=~"{evil}" organization_id!="" "odd name"!~"(?i)y"'
    ).labels
    sql, args = now_alerts_sql(matchers, 10)
    assert evil not in sql
    assert "odd name" not in sql
    assert evil in args
    assert f"^(?:{evil})$" in args
    assert "^(?:y)$" in args  # the (?i) flag is the operator
    assert "!~* $" in sql
    assert "coalesce(labels->>$" in sql
    assert "severity = $" in sql
    assert "coalesce(organization_id, '') <> $" in sql


def alert_row(status: str) -> AlertRow:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    return AlertRow(
        "payment_alerts", 1, "f", "A", status, "high", "org", "", "", {}, {}, "", now, None, now,
        now,
    )  # fmt: skip


def test_alert_states():
    firing = alert_row("firing")
    assert alert_states(firing, acknowledged=False, silenced=False, inhibited=False) == {
        "firing",
        "active",
    }
    assert alert_states(firing, acknowledged=True, silenced=True, inhibited=False) == {
        "firing",
        "acknowledged",
        "silenced",
    }
    resolved = alert_row("resolved")
    assert alert_states(resolved, acknowledged=True, silenced=True, inhibited=True) == {"resolved"}
