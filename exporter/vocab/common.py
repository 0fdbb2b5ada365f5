"""What every vocabulary shares: the two catch-all values and the first-match text classifier."""

from __future__ import annotations

import re

UNKNOWN = "unknown"
OTHER = "other"


def classify_text(text: str, table: tuple[tuple[re.Pattern[str], str], ...]) -> str:
    for pattern, cls in table:
        if pattern.search(text):
            return cls
    return UNKNOWN
