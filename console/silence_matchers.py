"""Silence matchers as Alertmanager reads them, checked and evaluated here first.

The semantics are Alertmanager's (``pkg/labels``): ``=`` and ``!=`` compare the label's value
(a missing label is ``""``), ``=~`` and ``!~`` match a regular expression anchored at both
ends (``^(?:re)$``). Alertmanager's expressions are Go's ``regexp``, which is RE2: so are ours
(``google-re2``), the same syntax (no look-around or back-references: refused as Alertmanager
refuses them) and matching in time linear in the value, whatever the expression. On top of
that, what a user may send is bounded:

- at most ``MAX_MATCHERS`` (32) matchers, label names of ``[a-zA-Z_][a-zA-Z0-9_]*`` up to 128
  characters, values up to ``MAX_VALUE`` (1024) characters;
- a regular expression up to ``MAX_REGEX`` (512) characters, compiled within
  ``REGEX_MEMORY`` (1 MiB) of RE2 program memory (RE2 also refuses repetition counts over
  1000, like Go);
- at least one matcher must not match the empty string (Alertmanager's rule: otherwise the
  silence would silence every alert).

A user or token limited to organizations acts only on silences that pin ``organization_id`` to
one of theirs (``pins_one_of``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import re2

MAX_MATCHERS = 32
MAX_NAME = 128
MAX_VALUE = 1024
MAX_REGEX = 512
REGEX_MEMORY = 1 << 20
NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
OPERATORS = ("=", "!=", "=~", "!~")
ORGANIZATION_LABEL = "organization_id"


class MatcherProblem(ValueError):
    """A matcher Alertmanager would refuse, or one over our bounds; the message says which."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the error comes back as an exception, not on stderr
    options.max_mem = REGEX_MEMORY
    return options


_OPTIONS = _options()


def _compile(value: str) -> Any:
    return re2.compile(f"^(?:{value})$", _OPTIONS)


_NOTHING = _compile("a^")  # matches no value: a regex Alertmanager holds that RE2 here cannot


@dataclass(frozen=True)
class SilenceMatcher:
    """One matcher; build it with ``checked`` (what a user typed: bounded, 400 otherwise) or
    ``from_alertmanager`` (what an Alertmanager holds, made by anyone)."""

    name: str
    value: str
    is_regex: bool = False
    is_equal: bool = True
    _compiled: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def checked(
        cls, name: str, value: str, is_regex: bool = False, is_equal: bool = True
    ) -> SilenceMatcher:
        """A matcher a user typed, within our bounds and RE2's syntax (``MatcherProblem``)."""
        if not NAME.match(name) or len(name) > MAX_NAME:
            raise MatcherProblem(
                f"label name {name[:40]!r}: letters, digits and '_', not starting with a"
                f" digit, at most {MAX_NAME} characters"
            )
        if not is_regex:
            if len(value) > MAX_VALUE:
                raise MatcherProblem(f"matcher {name}: value over {MAX_VALUE} characters")
            return cls(name, value, is_regex, is_equal)
        if len(value) > MAX_REGEX:
            raise MatcherProblem(
                f"matcher {name}: regex of {len(value)} characters; at most {MAX_REGEX}"
            )
        try:
            compiled = _compile(value)
        except re2.error as exc:
            reason = exc.args[0] if exc.args else exc
            if isinstance(reason, bytes):
                reason = reason.decode("utf-8", "replace")
            raise MatcherProblem(f"matcher {name}: invalid regex ({reason})") from None
        return cls(name, value, is_regex, is_equal, compiled)

    @classmethod
    def of(cls, name: str, op: str, value: str) -> SilenceMatcher:
        if op not in OPERATORS:
            raise MatcherProblem(f"matcher {name}: operator {op!r}; one of =, !=, =~, !~")
        return cls.checked(name, value, is_regex=op in ("=~", "!~"), is_equal=op in ("=", "=~"))

    @classmethod
    def from_alertmanager(cls, raw: Mapping[str, Any]) -> SilenceMatcher:
        """A matcher of a silence an Alertmanager holds: not held to our bounds, only to what
        Alertmanager itself accepted."""
        is_regex = bool(raw.get("isRegex", False))
        value = str(raw.get("value", ""))
        compiled = None
        if is_regex:
            try:
                compiled = _compile(value)
            except re2.error:
                compiled = _NOTHING
        return cls(
            str(raw.get("name", "")), value, is_regex, bool(raw.get("isEqual", True)), compiled
        )

    @property
    def op(self) -> str:
        return {(True, False): "=", (False, False): "!=", (True, True): "=~"}.get(
            (self.is_equal, self.is_regex), "!~"
        )

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if not self.is_regex:
            hit = actual == self.value
        else:
            compiled = self._compiled if self._compiled is not None else _compile(self.value)
            hit = compiled.search(actual) is not None
        return hit == self.is_equal

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'{self.name}{self.op}"{escaped}"'

    def to_alertmanager(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "isRegex": self.is_regex,
            "isEqual": self.is_equal,
        }


def check(matchers: list[SilenceMatcher]) -> None:
    """Raises ``MatcherProblem`` for what Alertmanager would refuse of the whole silence."""
    if not matchers:
        raise MatcherProblem("a silence needs at least one matcher")
    if len(matchers) > MAX_MATCHERS:
        raise MatcherProblem(f"{len(matchers)} matchers; at most {MAX_MATCHERS}")
    if all(m.matches({}) for m in matchers):
        raise MatcherProblem(
            "at least one matcher must not match the empty string (this would silence every alert)"
        )


def matches_all(matchers: Iterable[SilenceMatcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


def pinned_organizations(matchers: Iterable[SilenceMatcher]) -> set[str]:
    """The organizations an ``organization_id="X"`` matcher (exact, equal) pins."""
    return {
        m.value for m in matchers if m.name == ORGANIZATION_LABEL and m.is_equal and not m.is_regex
    }


class Scoped(Protocol):
    """A console user or an API token's principal."""

    @property
    def organizations(self) -> tuple[str, ...] | None: ...

    def sees(self, organization_id: str | None) -> bool: ...


def visible_to(who: Scoped, matchers: Iterable[SilenceMatcher]) -> bool:
    """Everyone unlimited sees every silence; a limited one those pinned to one of theirs."""
    if who.organizations is None:
        return True
    return any(who.sees(o) for o in pinned_organizations(matchers))


def may_set(who: Scoped, matchers: Iterable[SilenceMatcher]) -> bool:
    """A limited one may create (or make by editing) only a silence pinned to exactly one
    organization, one of theirs: it cannot silence another's alerts, or every one's."""
    if who.organizations is None:
        return True
    chosen = pinned_organizations(matchers)
    return len(chosen) == 1 and who.sees(next(iter(chosen)))
