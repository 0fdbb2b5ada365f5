"""Adversarial strings for the classifiers: the shapes that make backtracking regexes and
crawlerdetect's large alternations slow (long runs of one class, almost-matches, separators).
Shared by tests/abuse/test_adversarial_inputs.py and benchmarks/adversarial_inputs.py."""

from __future__ import annotations

SIZE = 16 * 1024


def adversarial(size: int = SIZE) -> dict[str, str]:
    """Name → a string of ``size`` characters."""

    def fill(unit: str, prefix: str = "", suffix: str = "") -> str:
        body = unit * ((size - len(prefix) - len(suffix)) // len(unit) + 1)
        return (prefix + body)[: size - len(suffix)] + suffix

    return {
        "digits_then_bang": fill("1", "/", "!"),
        "slug_then_bang": fill("a1", "/x/", "!"),
        "hex_then_bang": fill("f", "/", "!"),
        "underscore_token": fill("a", "/p_", "!"),
        "slashes": fill("a/", "Mozilla/5.0 "),
        "dots": fill("1.", "Mozilla/5.0 "),
        "words": fill("Mozilla AppleWebKit Chrome Safari like Gecko ", ""),
        "compatible_bot": fill("bot ", "Mozilla/5.0 (compatible; "),
        "relation_does": fill("relation ", "", " does"),
        "spaces": fill(" ", "x", "x"),
        "time_out": fill("time", "", "x"),
        "mixed_unicode": fill("é1_-", "/"),
    }
