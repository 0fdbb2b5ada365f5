"""``doctor``'s check that PagerDuty is not paged twice for one critical alert.

Alertmanager's critical receiver may page PagerDuty itself (the out-of-band path while the
bridge's database is down). Then the bridge must use Alertmanager's dedup_key
(``PAGERDUTY_DEDUP_KEY=group``), or every critical alert opens two incidents.
"""

from __future__ import annotations

from typing import Any

import httpx
import yaml

from passiton_common.http_client import async_client


async def alertmanager_pages_pagerduty(alertmanager_url: str, seconds: float = 3.0) -> bool | None:
    """Whether the running Alertmanager's configuration pages PagerDuty directly; None when it
    cannot be asked."""
    try:
        async with async_client(timeout=seconds) as http:
            response = await http.get(alertmanager_url.rstrip("/") + "/api/v2/status")
        response.raise_for_status()
        original = response.json()["config"]["original"]
        config: Any = yaml.safe_load(original)
    except (httpx.HTTPError, ValueError, KeyError, TypeError, yaml.YAMLError):
        return None
    receivers = config.get("receivers") if isinstance(config, dict) else None
    return any(isinstance(r, dict) and r.get("pagerduty_configs") for r in receivers or [])


def double_paging_verdict(pages_directly: bool | None, bridge_dedup: str) -> tuple[bool, str, str]:
    """(ok, detail, fix) for doctor."""
    if pages_directly is None:
        return True, "could not read Alertmanager's configuration", ""
    if pages_directly and bridge_dedup != "group":
        return (
            False,
            "Alertmanager pages PagerDuty directly and the bridge uses per-alert keys:"
            " every critical alert opens two incidents",
            "set PAGERDUTY_DEDUP_KEY=group for the bridge",
        )
    if pages_directly:
        return True, "Alertmanager pages critical alerts directly, with the bridge's key", ""
    return True, "only the bridge pages PagerDuty (no out-of-band path)", ""
