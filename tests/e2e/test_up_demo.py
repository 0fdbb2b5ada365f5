"""`up` as a newcomer meets it: without Prometheus and Alertmanager installed, and `up --demo`
(what `make up` runs) with nothing configured, printing a real alert on the console."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from bridge.storage.embedded import _process_start
from tests.e2e.harness import UpStack, http_ok, wait_until

pytestmark = pytest.mark.e2e


def _alive(pid: int) -> bool:
    return _process_start(pid) is not None  # a zombie has exited


def test_without_binaries_up_runs_the_two_services_says_how_to_install_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    state = tmp_path / "state"
    stack = UpStack.start(state, {"PATH": str(empty)})
    try:
        text = stack.output.text
        assert "apt-get install prometheus prometheus-alertmanager" in text
        for name in ("prometheus", "alertmanager"):
            assert any(
                line.split()[:1] == [name] and "(not installed)" in line
                for line in text.splitlines()
            ), text
        assert "Notifications: console" in text
        assert http_ok(stack.exporter_url + "/-/ready")
        assert http_ok(stack.bridge_url + "/-/ready")
        assert (state / "postgres" / "PG_VERSION").exists()  # the embedded PostgreSQL
        postmaster = int((state / "postgres" / "postmaster.pid").read_text().split()[0])
        pids = [stack.service_pid("exporter"), stack.service_pid("bridge"), postmaster]
    finally:
        code = stack.stop()
    assert code == 0, stack.output.text
    assert stack.output.lines[-1] == "stopped"
    assert not [pid for pid in pids if _alive(pid)]  # the database stopped with its last user


def test_demo_prints_a_real_alert_on_the_console(tmp_path: Path) -> None:
    started = time.monotonic()
    stack = UpStack.start(tmp_path / "state", {}, "--demo")
    try:
        # one page per incident: the first of the organization's payment alerts to fire
        # (PaymentFailureRatioHigh or PaymentConsecutiveFailures, both critical) opens it
        page = re.compile(r"\[CRITICAL\] Incident #\d+: (Payment\w+) \(animal-rescue\)")
        found = wait_until(
            lambda: next(
                (m for line in stack.output.lines if (m := page.search(line))),
                None,
            ),
            150 - (time.monotonic() - started),  # designed for two minutes; slack for slow CI
            "the demo's payment incident on the console",
            interval=1.0,
            on_timeout=stack.diagnostics,
        )
        alertname = found.group(1)
        print(f"demo alert on the console {time.monotonic() - started:.0f}s after starting `up`")
        # the banner names the web console and a login, and the alert is there
        text = stack.output.text
        assert f"Console: {stack.bridge_url}/console/" in text
        login = re.search(r"Console login: (\S+) / (\S+)", text)
        assert login, text
        with httpx.Client(base_url=stack.bridge_url, follow_redirects=True) as client:
            page = client.get("/console/login")
            token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert token
            now = client.post(
                "/console/login",
                data={"csrf": token.group(1), "username": login[1], "password": login[2]},
            )
            assert now.status_code == 200
            assert alertname in now.text
    finally:
        stack.stop()
    assert "demo: payments failure burst for animal-rescue" in stack.output.text
