"""A real Prometheus for the what-if: history backfilled as TSDB blocks with
``promtool tsdb create-blocks-from openmetrics`` (as the backtest does), the repository's rule
files loaded (so ``/api/v1/rules`` answers with the real expressions, ``for``,
``keep_firing_for`` and the group interval)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import httpx

from backtest.tsdb import free_port, tool

ROOT = Path(__file__).resolve().parents[2]

# one series: (metric name, organization, value at a timestamp)
Series = tuple[str, str, Callable[[float], float]]


def openmetrics(series: Iterable[Series], timestamps: list[float]) -> str:
    """The series sampled at the timestamps, grouped by metric family, in OpenMetrics."""
    by_name: dict[str, list[tuple[str, Callable[[float], float]]]] = {}
    for name, org, value in series:
        by_name.setdefault(name, []).append((org, value))
    lines: list[str] = []
    for name, members in by_name.items():
        lines.append(f"# TYPE {name} gauge")
        for org, value in members:
            lines.extend(
                f'{name}{{organization_id="{org}"}} {value(t):g} {t:.3f}' for t in timestamps
            )
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def backfilled_prometheus(
    work: Path, history: str, rule_files: list[Path], interval: str = "15s"
) -> Iterator[str]:
    """A Prometheus serving ``history`` (OpenMetrics) with ``rule_files`` loaded; its URL."""
    data = work / "data"
    source = work / "history.om"
    source.write_text(history)
    imported = subprocess.run(
        [
            tool("promtool"),
            "tsdb",
            "create-blocks-from",
            "openmetrics",
            "--max-block-duration=240h",
            "--quiet",
            str(source),
            str(data),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert imported.returncode == 0, imported.stdout + imported.stderr
    source.unlink()
    config = work / "prometheus.yml"
    files = ", ".join(f'"{p}"' for p in rule_files)
    config.write_text(f"global:\n  evaluation_interval: {interval}\nrule_files: [{files}]\n")
    log = work / "prometheus.log"
    with httpx.Client() as http:
        for _attempt in range(3):  # another process may take the free port first
            url = f"http://127.0.0.1:{free_port()}"
            with log.open("a") as out:
                process = subprocess.Popen(
                    [
                        tool("prometheus"),
                        f"--config.file={config}",
                        f"--storage.tsdb.path={data}",
                        "--storage.tsdb.retention.time=3650d",
                        f"--web.listen-address={url.removeprefix('http://')}",
                    ],
                    stdout=out,
                    stderr=out,
                )
            try:
                if _ready(http, url, process):
                    yield url
                    return
            finally:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    raise AssertionError(f"prometheus did not start:\n{log.read_text()[-3000:]}")


def _ready(http: httpx.Client, url: str, process: subprocess.Popen[bytes]) -> bool:
    """Ready with its rules loaded; False when the process exited."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            ready = http.get(f"{url}/-/ready", timeout=2).status_code == 200
            if ready and http.get(f"{url}/api/v1/rules", timeout=2).json()["data"]["groups"]:
                return True
        time.sleep(0.1)
    return False
