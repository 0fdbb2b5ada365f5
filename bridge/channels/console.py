"""The console channel: a readable block on stdout, used when no other channel is configured."""

from __future__ import annotations

import sys
from typing import TextIO

from bridge.channels.text import render_plain
from bridge.model import Message

RULE = "=" * 72


class ConsoleNotifier:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def notify(self, message: Message) -> None:
        stream = self._stream or sys.stdout  # looked up per call so redirection is honoured
        stream.write(f"{RULE}\n{render_plain(message)}{RULE}\n")
        stream.flush()
