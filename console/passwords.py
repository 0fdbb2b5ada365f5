"""The console's password rules, for ``user add`` and the users page: at least 12 characters,
not the user name, not one character repeated, not on the list of the most common passwords
(``data/common_passwords.txt``, compared lowered and without trailing digits or punctuation, so
``Password2024!`` is refused with ``password``)."""

from __future__ import annotations

import functools
from importlib import resources

MIN_LENGTH = 12
_TRAILING = "0123456789!?.@#$%&*_-+= "


@functools.cache
def common_passwords() -> frozenset[str]:
    text = resources.files("console").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def password_problems(username: str, password: str) -> list[str]:
    """What is wrong with ``password`` for ``username``; empty when it may be used."""
    if len(password) < MIN_LENGTH:
        return [f"password: at least {MIN_LENGTH} characters"]
    lowered = password.lower()
    base = lowered.rstrip(_TRAILING)
    problems = []
    if len(set(password)) == 1:
        problems.append("password: not one character repeated")
    if username and username.lower() in (lowered, base):
        problems.append("password: not the user name")
    common = common_passwords()
    if lowered in common or base in common or not base:
        problems.append("password: too common (on the list of the most used passwords)")
    return problems
