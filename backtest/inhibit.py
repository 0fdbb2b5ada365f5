"""Alertmanager's inhibit rules applied to the replayed firings: a page is a notification, and
Alertmanager sends none for an alert while a firing source alert of one of its inhibit rules
matches it. A firing inhibited from start to end sends no page; one inhibited when it starts
pages when its inhibition ends (if it still fires then)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from backtest.alerts import Episode
from bridge.matchers import Matcher, parse_matcher

__all__ = ["InhibitRule", "Matcher", "load_inhibit_rules", "pages", "parse_matcher"]


@dataclass(frozen=True)
class InhibitRule:
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]


def load_inhibit_rules(path: Path) -> list[InhibitRule]:
    config = yaml.safe_load(path.read_text()) or {}
    return [
        InhibitRule(
            tuple(parse_matcher(m) for m in rule.get("source_matchers") or []),
            tuple(parse_matcher(m) for m in rule.get("target_matchers") or []),
            tuple(rule.get("equal") or []),
        )
        for rule in config.get("inhibit_rules") or []
    ]


def _labels(e: Episode) -> dict[str, str]:
    return {**dict(e.labels), "alertname": e.alertname}


def pages(found: list[Episode], rules: list[InhibitRule]) -> list[Episode]:
    """The firings as Alertmanager notifies them: each one's ``fired_at`` moved to the first
    moment no firing source inhibits it; those inhibited for as long as they fire are dropped."""
    labelled = [(e, _labels(e)) for e in found]
    # per rule: its sources' firing intervals by the values of its `equal` labels
    sources: list[dict[tuple[str, ...], list[tuple[int, int, dict[str, str]]]]] = []
    for rule in rules:
        by_key: dict[tuple[str, ...], list[tuple[int, int, dict[str, str]]]] = {}
        for e, labels in labelled:
            if all(m.matches(labels) for m in rule.source):
                key = tuple(labels.get(n, "") for n in rule.equal)
                by_key.setdefault(key, []).append((e.fired_at, e.resolved_at, labels))
        sources.append(by_key)
    out = []
    for target, labels in labelled:
        blocked = [
            (begin, end)
            for rule, by_key in zip(rules, sources, strict=True)
            if all(m.matches(labels) for m in rule.target)
            for begin, end, source_labels in by_key.get(
                tuple(labels.get(n, "") for n in rule.equal), []
            )
            if source_labels != labels  # an alert does not inhibit itself
        ]
        t = target.fired_at
        for begin, end in sorted(blocked):
            if begin <= t < end:
                t = end
        if t < target.resolved_at:
            out.append(target if t == target.fired_at else replace(target, fired_at=t))
    return out
