"""The server and client wheels, each installed into a clean virtualenv and used from outside
the checkout (``scripts/check-wheels``): the server runs ``migrate``, the bridge (ready, stores an
Alertmanager notification) and ``up`` on the embedded PostgreSQL with DATABASE_URL unset and
leaves no PostgreSQL process after SIGTERM; the client imports without the server. Part of the
test run so that it overlaps with the end-to-end tests' waiting (``make wheels`` runs it alone)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(900)  # pip installs into two fresh virtualenvs
def test_the_wheels_install_and_run_from_a_clean_virtualenv() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHON"] = sys.executable
    done = subprocess.run(
        [str(REPO / "scripts" / "check-wheels")],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert "check-embedded-bridge: ready, stored a notification, stopped its PostgreSQL" in (
        done.stdout
    )
    assert "check-embedded-bridge: up ready on the embedded PostgreSQL" in done.stdout
    assert done.stdout.rstrip().endswith("check-wheels: OK")
