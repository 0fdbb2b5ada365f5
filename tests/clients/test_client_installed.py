"""The client's tests run against the installed distribution, not the source tree."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import passiton_monitoring_client

REPO = Path(__file__).resolve().parents[2]


def test_the_client_under_test_is_the_installed_distribution() -> None:
    location = Path(passiton_monitoring_client.__file__).resolve()
    assert "site-packages" in location.parts
    assert not location.is_relative_to(REPO / "clients")
    assert metadata.version("passiton-monitoring-client")
    requires = metadata.requires("passiton-monitoring-client") or []
    assert [r for r in requires if "extra ==" not in r] == ["httpx>=0.27"]
