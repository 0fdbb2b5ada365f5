"""The console login that ``passiton-monitoring up --demo`` creates and prints.

User ``demo`` (role admin) with a random password kept in the state directory
(``console-demo-password``, mode 0600), so restarting the demo keeps the same login.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from bridge.storage import open_database
from console.auth import hash_password

DEMO_USER = "demo"
PASSWORD_FILE = "console-demo-password"  # noqa: S105 - a file name


def demo_password(state_dir: Path) -> str:
    path = state_dir / PASSWORD_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    password = secrets.token_urlsafe(12)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(password + "\n")
    return password


async def ensure_demo_user(env: Mapping[str, str], state_dir: Path) -> tuple[str, str]:
    """Create (or reset) the demo user in the stack's alert database; (user, password)."""
    password = demo_password(state_dir)
    url = env.get("DATABASE_URL", "").strip()
    async with open_database(url, state_dir, pool_size=1) as storage:
        await storage.migrate()
        await storage.console().upsert_user(
            DEMO_USER, hash_password(password), "admin", datetime.now(UTC)
        )
    return DEMO_USER, password
