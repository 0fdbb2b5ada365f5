"""The TypeScript client's own tests (``clients/typescript/test/*.test.mjs``, Node's test runner,
against the build ``make test`` makes first), run as one test of this suite so that they overlap
with the rest instead of running before it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TS = Path(__file__).resolve().parents[2] / "clients" / "typescript"


@pytest.mark.timeout(600)
def test_the_typescript_clients_own_tests_pass() -> None:
    npm = shutil.which("npm")
    assert npm, "npm is required: `make test` installs it (Makefile debs)"
    assert (TS / "dist").is_dir(), "the client is not built: `make test` runs `make ts-build` first"
    env = {
        **os.environ,
        "PASSITON_MONITORING_BIN": str(Path(sys.executable).with_name("passiton-monitoring")),
    }
    done = subprocess.run(
        [npm, "test", "--silent"],
        cwd=TS,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
