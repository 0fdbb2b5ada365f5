"""Adversarial inputs for the bridge's redaction patterns (``bridge/sanitize.py``).

Each entry names the pattern it attacks and builds a string of a given length that makes a
backtracking regex scan the rest of the string from many start positions (the quadratic shape
of the patterns before issue 10). Shared by ``tests/abuse/test_abuse_bridge.py`` and
``benchmarks/bridge_sanitize.py``.
"""

from __future__ import annotations

from collections.abc import Callable


def _repeat(unit: str, prefix: str = "") -> Callable[[int], str]:
    def build(n: int) -> str:
        return (prefix + unit * (n // len(unit) + 1))[:n]

    return build


# (pattern attacked, input name) -> builder of an input of n characters
ADVERSARIAL: dict[tuple[str, str], Callable[[int], str]] = {
    ("url_password", "hyphenated word run"): _repeat("a-"),
    ("url_password", "colons after a scheme"): _repeat("a:", "x://"),
    ("url_password", "schemes without a host"): _repeat("a://"),
    ("auth_scheme", "bearer repeated"): _repeat("bearer "),
    ("auth_scheme", "bearer and a long token"): _repeat("a", "bearer "),
    ("stripe_key", "sk_live_ repeated"): _repeat("sk_live_"),
    ("stripe_restricted_key", "rk_ repeated"): _repeat("rk_"),
    ("stripe_webhook_secret", "whsec_ repeated"): _repeat("whsec_"),
    ("slack_token", "xoxb- repeated"): _repeat("xoxb-"),
    ("slack_webhook", "hook paths repeated"): _repeat("hooks.slack.com/services/"),
    ("aws_key", "AKIA repeated"): _repeat("AKIA"),
    ("github_token", "ghp_ repeated"): _repeat("ghp_"),
    ("github_pat", "github_pat_ repeated"): _repeat("github_pat_"),
    ("google_key", "AIza repeated"): _repeat("AIza"),
    ("jwt", "eyJ- repeated"): _repeat("eyJ-"),
    ("jwt", "one segment repeated"): _repeat("eyJaaaaaaaaa."),
    ("key_value", "underscored words"): _repeat("a_"),
    ("key_value", "token_ repeated"): _repeat("token_"),
    ("key_value", "names without values"): _repeat("token= "),
    ("key_value", "unterminated quote"): _repeat("a", 'password="'),
    ("card", "digits and spaces"): _repeat("1 "),
    ("card", "digits and dashes"): _repeat("4-"),
    ("email", "hyphenated domain"): _repeat("a-", "a@"),
    ("email", "at-dot repeated"): _repeat("a@a."),
    ("email", "dotted local parts"): _repeat(" a."),
    ("email", "labels without a top-level domain"): _repeat("a-a.", "x@"),
}

# A secret of each kind, appended to an adversarial input: it must still be redacted.
SECRETS = {
    "url_password": ("postgresql://app:hunter2hunter2@db/x", "hunter2hunter2"),
    "auth_scheme": ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
    "stripe_key": ("sk_live_51HxYzAbCdEfGhIj", "sk_live_51HxYzAbCdEfGhIj"),
    "stripe_restricted_key": ("rk_abcdefghijklmnopqr", "rk_abcdefghijklmnopqr"),
    "stripe_webhook_secret": ("whsec_abcdefghijklmnopqrstu", "whsec_abcdefghijklmnopqrstu"),
    "slack_token": ("xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl"),
    "slack_webhook": ("https://hooks.slack.com/services/T0/B0/XXXXXXXX", "T0/B0/XXXXXXXX"),
    "aws_key": ("AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE"),
    "github_token": ("ghp_" + "c" * 36, "ghp_" + "c" * 36),
    "github_pat": ("github_pat_" + "a" * 40, "github_pat_" + "a" * 40),
    "google_key": ("AIza" + "b" * 35, "AIza" + "b" * 35),
    "jwt": ("eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.sig", "eyJyb2xlIjoiYW5vbiJ9"),
    "key_value": ("client_secret=shhh-very-secret", "shhh-very-secret"),
    "card": ("card 4242 4242 4242 4242 used", "4242 4242 4242 4242"),
    "email": ("mail jane.doe@example.org now", "jane.doe@example.org"),
}
