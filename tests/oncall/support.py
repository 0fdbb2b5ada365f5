"""What the on-call tests share: on-call files written from YAML text, UTC times."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

from bridge.oncall.config import OncallConfig, load_oncall

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "oncall.example.yml"

PEOPLE = """\
people:
  - id: alice
    name: Alice Example
    time_zone: Europe/Berlin
    contacts: {sms: "+15005550011", voice: "+15005550011", email: alice@example.org, slack: U0ALICE}
  - id: bob
    name: Bob Example
    contacts: {sms: "+15005550012", email: bob@example.org, slack: U0BOB}
  - id: carol
    name: Carol Example
    contacts: {sms: "+15005550013", email: carol@example.org}
"""


def write(tmp_path: Path, text: str, name: str = "oncall.yml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def rotation_config(
    tmp_path: Path, zone: str, rotation: str, people: str = "[alice, bob]"
) -> OncallConfig:
    """The three people and one schedule ``s`` in ``zone`` with ``rotation`` (flow mapping
    content without people)."""
    text = PEOPLE + (
        "schedules:\n"
        f"  - {{id: s, time_zone: {zone}, rotation: {{{rotation}, people: {people}}}}}\n"
    )
    return load_oncall(write(tmp_path, text))


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]
