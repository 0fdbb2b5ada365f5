"""The console channel: a readable block on stdout, used when no other channel is configured."""

from __future__ import annotations

import re
import sys
from typing import TextIO

from bridge.channels.text import render_plain
from bridge.model import Message

RULE = "=" * 72
# Terminal control characters (escape sequences could rewrite the operator's screen).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


class ConsoleNotifier:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def notify(self, message: Message) -> None:
        stream = self._stream or sys.stdout  # looked up per call so redirection is honoured
        text = _CONTROL.sub("?", render_plain(message))
        stream.write(f"{RULE}\n{text}{RULE}\n")
        stream.flush()
