"""Alertmanager's matcher syntax (bridge/matchers.py): the four operators, lists in braces,
anchored regular expressions, a missing label as the empty string, errors that say what."""

from __future__ import annotations

import pytest

from bridge.matchers import Matcher, MatcherError, parse_matcher, parse_matchers


def test_the_four_operators() -> None:
    labels = {"severity": "critical", "category": "payment"}
    assert parse_matcher('severity="critical"').matches(labels)
    assert not parse_matcher('severity!="critical"').matches(labels)
    assert parse_matcher('category=~"payment|widget"').matches(labels)
    assert not parse_matcher('category!~"pay.*"').matches(labels)
    assert parse_matcher('category!~"pay"').matches(labels)  # anchored: "pay" is not "payment"


def test_regular_expressions_are_fully_anchored_like_alertmanager() -> None:
    matcher = parse_matcher('alertname=~"A|B"')
    assert matcher.matches({"alertname": "B"})
    assert not matcher.matches({"alertname": "AB"})
    assert not matcher.matches({"alertname": "xA"})


def test_a_missing_label_is_the_empty_string() -> None:
    assert parse_matcher('team=""').matches({})
    assert parse_matcher('team!="ops"').matches({})
    assert parse_matcher('team=~".*"').matches({})
    assert not parse_matcher('team=~".+"').matches({})


def test_spelling_variants() -> None:
    assert parse_matcher("  severity = critical ") == Matcher("severity", "=", "critical")
    assert parse_matcher('"service.name"="api"') == Matcher("service.name", "=", "api")
    assert parse_matcher(r'msg="say \"hi\"\\n"').value == 'say "hi"\\n'
    assert parse_matcher(r'msg="a\nb"').value == "a\nb"
    assert parse_matcher("x=") == Matcher("x", "=", "")
    assert str(Matcher("service.name", "=~", 'a"b')) == r'"service.name"=~"a\"b"'


def test_lists_in_braces_or_not() -> None:
    matchers = parse_matchers('{severity="critical", category=~"payment|widget",}')
    assert matchers == (
        Matcher("severity", "=", "critical"),
        Matcher("category", "=~", "payment|widget"),
    )
    assert parse_matchers('a="1", b!="2"') == (Matcher("a", "=", "1"), Matcher("b", "!=", "2"))
    assert parse_matchers('{a="x,y"}') == (Matcher("a", "=", "x,y"),)
    assert parse_matchers("{}") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty matcher"),
        (
            'severity"critical"',
            "expected =, !=, =~ or !~ after the label name 'severity' at position 9",
        ),
        ('severity=="critical"', "unexpected '\"' after the value at position 11"),
        ('severity="critical', "unterminated quoted string at position 10"),
        ('="x"', "expected a label name at position 1"),
        ('a=~"(x"', "a=~: invalid regular expression '(x'"),
        ('a="\\q"', "unknown escape \\q at position 4"),
        ('{a="1"', "expected ',' or the closing '}' at position 7"),
        ('{a="1"} b', "unexpected 'b' after the value"),
        ("a=b c", "unexpected 'c' after the value at position 5"),
    ],
)
def test_errors_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(MatcherError) as info:
        parse_matchers(text) if text.startswith("{") else parse_matcher(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)
