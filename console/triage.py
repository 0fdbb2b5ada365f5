"""The Now page's filter, pure: Alertmanager matchers as typed in its filter bar (``severity=
"critical" category=~"payment|widget" organization_id!="org-1" @state=acknowledged|silenced``),
checked before anything runs them; the states of an alert (``@state``); collapsing alerts by
name; the filter's links (one matcher more, the page's options kept).

Label matchers run in PostgreSQL (``bridge/storage/console_now.py``): here they are only
parsed and bounded (the text, the number of matchers, each regex's length) and regexes that
Alertmanager's RE2 refuses and PostgreSQL would run by backtracking (back-references,
look-around) are refused. ``@state`` matchers are evaluated here, against the six fixed state
words only, never against stored text."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from bridge.matchers import Matcher, MatcherError, parse_filter
from bridge.model import SEVERITIES, SEVERITY_RANK
from bridge.storage.console import AlertRow

STATE = "@state"
# firing and resolved as stored; active: firing and neither acknowledged, silenced nor inhibited
ALERT_STATES = ("active", "firing", "resolved", "acknowledged", "silenced", "inhibited")
HIDDEN_STATES = ("acknowledged", "silenced", "inhibited")  # hidden unless asked for
MAX_TEXT = 1000  # characters of filter text
MAX_MATCHERS = 20
MAX_REGEX = 256  # characters of one regular expression
# what RE2 (Alertmanager's engine) refuses and a backtracking engine can take forever on
_REFUSED = (
    (re.compile(r"\\[1-9]|\\k<"), "back-references"),
    (re.compile(r"\(\?<?[=!]"), "look-ahead or look-behind"),
    (re.compile(r"\(\?>|[*+?}][+]"), "atomic groups or possessive quantifiers"),
)


class FilterError(ValueError):
    """A filter that cannot be used; the message names the problem."""


@dataclass(frozen=True)
class NowFilter:
    text: str = ""
    labels: tuple[Matcher, ...] = ()  # run by the database
    states: tuple[tuple[bool, frozenset[str]], ...] = ()  # (wanted, of these states)

    @property
    def names_states(self) -> bool:
        """An ``@state`` matcher decides what shows (the default hiding is off)."""
        return bool(self.states)

    def admits(self, states: frozenset[str]) -> bool:
        return all(bool(states & chosen) == wanted for wanted, chosen in self.states)


def _unescaped(value: str) -> str:
    """The regex with escaped characters blanked, so ``\\(?=`` is not taken for look-ahead."""
    return re.sub(r"\\\\|\\[^1-9k]", "__", value)


def _check_regex(m: Matcher) -> None:
    if len(m.value) > MAX_REGEX:
        raise FilterError(f"{m.name}{m.op}: the regular expression is over {MAX_REGEX} characters")
    bare = _unescaped(m.value)
    for pattern, what in _REFUSED:
        if pattern.search(bare):
            raise FilterError(f"{m.name}{m.op}{_quote(m.value)}: {what} are not supported")


def _states_of(m: Matcher) -> tuple[bool, frozenset[str]]:
    if m.op in ("=", "!="):
        words = set(m.value.split("|"))
        unknown = sorted(words - set(ALERT_STATES))
        if unknown:
            raise FilterError(
                f"{STATE}{m.op}: unknown state {unknown[0]!r} (states: {', '.join(ALERT_STATES)})"
            )
        return (m.op == "=", frozenset(words))
    # a regex over the six words (Python's re on at most 12 characters each): the states it
    # matches, wanted (=~) or not (!~)
    matched = frozenset(s for s in ALERT_STATES if m.matches({STATE: s}) == (m.op == "=~"))
    return (m.op == "=~", matched)


def parse_now_filter(text: str) -> NowFilter:
    """The filter bar's text as a ``NowFilter``; ``FilterError`` names what is wrong."""
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise FilterError(f"the filter is over {MAX_TEXT} characters")
    try:
        matchers = parse_filter(text, specials=(STATE,))
    except MatcherError as exc:
        raise FilterError(str(exc)) from None
    if len(matchers) > MAX_MATCHERS:
        raise FilterError(f"at most {MAX_MATCHERS} matchers, not {len(matchers)}")
    labels, states = [], []
    for m in matchers:
        if m.op in ("=~", "!~"):
            _check_regex(m)
        if m.name == STATE:
            states.append(_states_of(m))
        else:
            labels.append(m)
    return NowFilter(text, tuple(labels), tuple(states))


def alert_states(
    alert: AlertRow, *, acknowledged: bool, silenced: bool, inhibited: bool
) -> frozenset[str]:
    states = {alert.status}
    if alert.status == "firing":
        if acknowledged:
            states.add("acknowledged")
        if silenced:
            states.add("silenced")
        if inhibited:
            states.add("inhibited")
        if len(states) == 1:
            states.add("active")
    return frozenset(states)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def matcher_text(m: Matcher) -> str:
    return f"{m.name}{m.op}{_quote(m.value)}"


def refine(text: str, name: str, value: str) -> str:
    """The filter with ``name="value"`` (replacing an equality on ``name``): filtering to one
    organization, one severity, one alert name is one click."""
    try:
        kept = [m for m in parse_filter(text, specials=(STATE,)) if (m.name, m.op) != (name, "=")]
    except MatcherError:
        kept = []
    return " ".join([*(matcher_text(m) for m in kept), matcher_text(Matcher(name, "=", value))])


@dataclass(frozen=True)
class PageOptions:
    """The Now page's URL: ``q`` (the filter), ``all`` (hidden states shown), ``group``
    (``name``: collapsed by alert name), ``snoozed`` (snoozed incidents shown)."""

    q: str = ""
    show_all: bool = False
    by_name: bool = False
    show_snoozed: bool = False

    @classmethod
    def of(cls, query: Mapping[str, str]) -> PageOptions:
        return cls(
            query.get("q", ""),
            query.get("all") == "1",
            query.get("group") == "name",
            query.get("snoozed") == "1",
        )

    def params(self, **changes: object) -> dict[str, str]:
        q = str(changes.get("q", self.q))
        show_all = bool(changes.get("show_all", self.show_all))
        by_name = bool(changes.get("by_name", self.by_name))
        show_snoozed = bool(changes.get("show_snoozed", self.show_snoozed))
        out = {"q": q} if q else {}
        if show_all:
            out["all"] = "1"
        if by_name:
            out["group"] = "name"
        if show_snoozed:
            out["snoozed"] = "1"
        return out

    def link(self, **changes: object) -> str:
        params = self.params(**changes)
        return "?" + urlencode(params) if params else "?"

    def path(self, prefix: str) -> str:
        """The page itself with these options (a redirect's target)."""
        params = self.params()
        return f"{prefix}/" + ("?" + urlencode(params) if params else "")

    def refined(self, name: str, value: str) -> str:
        return self.link(q=refine(self.q, name, value))


@dataclass
class NameGroup:
    """The alerts of one name (collapsed view): count per severity, organizations."""

    alertname: str
    alerts: list[AlertRow] = field(default_factory=list)

    @property
    def severities(self) -> list[tuple[str, int]]:
        counts = Counter(a.severity for a in self.alerts)
        return [(s, counts[s]) for s in SEVERITIES if counts[s]]

    @property
    def top(self) -> str:
        return max((a.severity for a in self.alerts), key=lambda s: SEVERITY_RANK.get(s, -1))

    @property
    def organizations(self) -> int:
        return len({a.organization_id for a in self.alerts if a.organization_id})

    @property
    def firing(self) -> int:
        return sum(1 for a in self.alerts if a.status == "firing")


def by_name(alerts: Iterable[AlertRow]) -> list[NameGroup]:
    """One group per alert name, the most severe first, then the largest."""
    groups: dict[str, NameGroup] = {}
    for a in alerts:
        groups.setdefault(a.alertname, NameGroup(a.alertname)).alerts.append(a)
    return sorted(
        groups.values(),
        key=lambda g: (-SEVERITY_RANK.get(g.top, -1), -len(g.alerts), g.alertname),
    )


def severity_counts(alerts: Iterable[AlertRow]) -> list[tuple[str, int]]:
    """Firing alerts per severity, every severity (zeros included), most severe first."""
    counts = Counter(a.severity for a in alerts if a.status == "firing")
    return [(s, counts[s]) for s in SEVERITIES]
