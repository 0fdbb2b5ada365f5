"""Alertmanager's label matchers: ``name="value"``, ``name!="value"``, ``name=~"regex"``,
``name!~"regex"``, one at a time or as a list ``{a="b", c=~"d"}``.

As in Alertmanager: a missing label matches as the empty string, regular expressions are fully
anchored (``=~"A|B"`` matches ``A`` but not ``AB``), values may be unquoted when they hold no
quote, comma, brace or space, and label names may be quoted (the UTF-8 syntax). Errors say what
is wrong and where (``MatcherError``, a ``ValueError``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

Op = Literal["=", "!=", "=~", "!~"]
OPS: tuple[Op, ...] = ("=~", "!~", "!=", "=")  # longest first, for the scanner
_NAME = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_SPECIAL = re.compile(r"@[A-Za-z_]*")
_UNQUOTED = re.compile(r'[^"\s,{}]*')
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t"}


class MatcherError(ValueError):
    """A matcher that does not parse; the message says what is wrong."""


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str
    _regex: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise MatcherError(f"unknown operator {self.op!r} (use =, !=, =~ or !~)")
        if self.op in ("=~", "!~") and self._regex is None:
            try:
                # RE2's leading (?i), which Python takes only at the very start: scoped
                value = self.value
                pattern = f"(?i:{value[4:]})" if value.startswith("(?i)") else f"(?:{value})"
                object.__setattr__(self, "_regex", re.compile(pattern))
            except re.error as exc:
                raise MatcherError(
                    f"{self.name}{self.op}: invalid regular expression {self.value!r}: {exc}"
                ) from None

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self._regex is None:
            return (actual == self.value) == (self.op == "=")
        return (self._regex.fullmatch(actual) is not None) == (self.op == "=~")

    def __str__(self) -> str:
        name = self.name if _NAME.fullmatch(self.name) else _quote(self.name)
        return f"{name}{self.op}{_quote(self.value)}"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class _Scanner:
    def __init__(self, text: str, specials: Collection[str] = ()) -> None:
        self.text = text
        self.pos = 0
        self.specials = specials  # names outside the label syntax, e.g. ``@state``

    def fail(self, message: str) -> MatcherError:
        return MatcherError(f"{message} at position {self.pos + 1} in {self.text!r}")

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_space()
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def quoted(self) -> str:
        start = self.pos
        self.pos += 1  # the opening quote
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == '"':
                self.pos += 1
                return "".join(out)
            if char == "\\":
                escaped = self.text[self.pos + 1 : self.pos + 2]
                if escaped not in _ESCAPES:
                    raise self.fail(f"unknown escape \\{escaped}")
                out.append(_ESCAPES[escaped])
                self.pos += 2
                continue
            out.append(char)
            self.pos += 1
        self.pos = start
        raise self.fail("unterminated quoted string")

    def name(self) -> str:
        self.skip_space()
        if self.peek() == '"':
            name = self.quoted()
            if not name:
                raise self.fail("empty label name")
            return name
        if self.peek() == "@":
            special = _SPECIAL.match(self.text, self.pos)
            word = special.group() if special else "@"
            if word not in self.specials:
                known = ", ".join(sorted(self.specials)) or "none here"
                raise self.fail(f"unknown name {word!r} (names with @: {known})")
            self.pos += len(word)
            return word
        match = _NAME.match(self.text, self.pos)
        if match is None:
            raise self.fail("expected a label name")
        self.pos = match.end()
        return match.group()

    def op(self, name: str) -> Op:
        self.skip_space()
        for op in OPS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                return op
        raise self.fail(f"expected =, !=, =~ or !~ after the label name {name!r}")

    def value(self) -> str:
        self.skip_space()
        if self.peek() == '"':
            return self.quoted()
        match = _UNQUOTED.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()
        return match.group()

    def matcher(self) -> Matcher:
        name = self.name()
        op = self.op(name)
        value = self.value()
        return Matcher(name, op, value)


def parse_matcher(text: str) -> Matcher:
    """One matcher, e.g. ``severity="critical"`` or ``alertname=~"Payment.*"``."""
    scanner = _Scanner(text)
    if scanner.at_end():
        raise MatcherError("empty matcher")
    matcher = scanner.matcher()
    if not scanner.at_end():
        raise scanner.fail(f"unexpected {scanner.peek()!r} after the value")
    return matcher


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """One matcher or a comma-separated list, optionally in braces: ``{a="b", c=~"d"}``;
    ``{}`` is the empty list (it matches everything)."""
    scanner = _Scanner(text)
    if scanner.at_end():
        raise MatcherError("empty matcher")
    braced = scanner.peek() == "{"
    if braced:
        scanner.pos += 1
    found: list[Matcher] = []
    while True:
        if scanner.at_end() or (braced and scanner.peek() == "}"):
            break
        found.append(scanner.matcher())
        scanner.skip_space()
        if scanner.peek() == ",":
            scanner.pos += 1
            continue
        break
    if braced:
        if scanner.at_end() or scanner.peek() != "}":
            raise scanner.fail("expected ',' or the closing '}'")
        scanner.pos += 1
    if not scanner.at_end():
        raise scanner.fail(f"unexpected {scanner.peek()!r} after the value")
    if not found and not braced:
        raise MatcherError("empty matcher")
    return tuple(found)


def parse_filter(text: str, specials: Collection[str] = ()) -> tuple[Matcher, ...]:
    """Matchers as a filter bar takes them (amtool's and Karma's way): separated by spaces or
    commas, optionally in braces; empty text is the empty list. ``specials`` are names outside
    the label syntax the caller gives a meaning to (``@state``)."""
    scanner = _Scanner(text, specials)
    if scanner.at_end():
        return ()
    braced = scanner.peek() == "{"
    if braced:
        scanner.pos += 1
    found: list[Matcher] = []
    while not scanner.at_end() and not (braced and scanner.peek() == "}"):
        found.append(scanner.matcher())
        scanner.skip_space()
        if scanner.peek() == ",":
            scanner.pos += 1
    if braced:
        if scanner.at_end() or scanner.peek() != "}":
            raise scanner.fail("expected ',' or the closing '}'")
        scanner.pos += 1
        if not scanner.at_end():
            raise scanner.fail(f"unexpected {scanner.peek()!r} after the closing '}}'")
    return tuple(found)


def matches_all(matchers: tuple[Matcher, ...], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)
