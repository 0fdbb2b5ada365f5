"""What an SMS reply to a page means.

``ack`` / ``a`` / ``1`` acknowledges the newest open incident that paged the sender; ``12a``
(or ``12 ack``, ``ack 12``) acknowledges incident 12, ``12c`` (``close``, ``resolve``) resolves
it; ``help`` and anything else get the help text. Matching is by hand, not by regular
expression, and only on the first 40 characters: a reply is short text from a phone.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.oncall.actions import Action

HELP = (
    "PassItOn on-call: reply ACK to acknowledge your newest page, 12A to acknowledge incident 12,"
    " 12C to resolve it."
)
_WORDS: dict[str, Action] = {
    "a": "acknowledge",
    "ack": "acknowledge",
    "acknowledge": "acknowledge",
    "1": "acknowledge",
    "c": "resolve",
    "close": "resolve",
    "resolve": "resolve",
    "resolved": "resolve",
}
MAX_INCIDENT_DIGITS = 18  # a BIGINT


@dataclass(frozen=True)
class Reply:
    action: Action
    incident_id: int | None  # None: the newest open incident that paged the sender


def parse_reply(body: str) -> Reply | None:
    """The action a reply asks for, or None (answer with ``HELP``)."""
    words = body[:40].strip().lower().replace(",", " ").split()
    if not words or len(words) > 2:
        return None
    if len(words) == 2:  # "12 ack" or "ack 12"
        first, second = words
        number, word = (first, second) if first.isdigit() else (second, first)
        if not number.isdigit() or word not in _WORDS or word == "1":
            return None
        return _numbered(number, _WORDS[word])
    word = words[0]
    if word in _WORDS:
        return Reply(_WORDS[word], None)
    digits = word.rstrip("abcdefghijklmnopqrstuvwxyz")
    suffix = word[len(digits) :]
    if digits.isascii() and digits.isdigit() and suffix in _WORDS and suffix != "1":
        return _numbered(digits, _WORDS[suffix])
    return None


def _numbered(digits: str, action: Action) -> Reply | None:
    if not digits.isascii() or len(digits) > MAX_INCIDENT_DIGITS or int(digits) < 1:
        return None
    return Reply(action, int(digits))
