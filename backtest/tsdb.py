"""The replay's history in a real Prometheus TSDB: promtool backfills the scraped days, a real
Prometheus serves them, and the recording rules are evaluated over the whole history in
dependency order (each level backfilled as blocks before the next one reads it)."""

from __future__ import annotations

import contextlib
import itertools
import re
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

# One range query answers at most 11,000 points per series.
MAX_POINTS = 11_000


_clients = threading.local()


def _http() -> httpx.Client:
    """This thread's HTTP client: ``httpx.get``/``post`` build a TLS context per call (50 ms of
    CPU); no connection is kept between requests, as with them."""
    client = getattr(_clients, "client", None)
    if client is None:
        client = _clients.client = httpx.Client(limits=httpx.Limits(max_keepalive_connections=0))
    return client


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (make debs installs it)")
    return path


class Importer:
    """promtool tsdb create-blocks-from openmetrics, one file at a time, in one background process
    so that importing a day overlaps with simulating the next."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._running: tuple[subprocess.Popen[str], Path] | None = None

    def submit(self, path: Path) -> None:
        self.wait()
        # 24h blocks: promtool re-reads its input once per block; a day's file is read once
        process = subprocess.Popen(
            [
                tool("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=24h",
                "--quiet",
                str(path),
                str(self.data_dir),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._running = (process, path)

    def wait(self) -> None:
        if self._running is None:
            return
        process, path = self._running
        output, _ = process.communicate()
        self._running = None
        if process.returncode != 0:
            raise RuntimeError(f"promtool could not import {path}:\n{output}")
        path.unlink()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Prometheus:
    """A real Prometheus serving the replay's TSDB (no scrapes, no rules of its own).

    The lookback delta is just under the replay's step: a series that stops being written stops
    being visible at the next step, as a stale marker does for live scrapes and rule results."""

    data_dir: Path
    step: int
    process: subprocess.Popen[bytes] | None = None
    url: str = ""
    lookback: int = 0  # seconds; default just under the step
    admin: bool = False

    def start(self) -> None:
        work = self.data_dir.parent
        config = work / "prometheus.yml"
        config.write_text("global:\n  scrape_interval: 1h\n")
        log = (work / "prometheus.log").open("a")
        for _attempt in range(3):
            port = free_port()
            self.url = f"http://127.0.0.1:{port}"
            self.process = subprocess.Popen(
                [
                    tool("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir}",
                    "--storage.tsdb.retention.time=3650d",
                    f"--web.listen-address=127.0.0.1:{port}",
                    f"--query.lookback-delta={self.lookback or self.step - 1}s",
                    *(["--web.enable-admin-api"] if self.admin else []),
                    "--query.max-samples=200000000",
                    "--query.timeout=10m",
                ],
                stdout=log,
                stderr=log,
            )
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and self.process.poll() is None:
                with contextlib.suppress(httpx.HTTPError):
                    if _http().get(f"{self.url}/-/ready", timeout=2).status_code == 200:
                        return
                time.sleep(0.2)
            self.stop()
        raise RuntimeError(f"prometheus did not start; see {work / 'prometheus.log'}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def query_range(self, expr: str, start: int, end: int) -> Iterator[dict[str, Any]]:
        """Every series of ``expr`` evaluated at start, start + step, ... end (inclusive), split
        into queries of at most MAX_POINTS steps."""
        chunk = (MAX_POINTS - 1) * self.step
        t = start
        while t <= end:
            stop = min(end, t + chunk)
            response = _http().post(
                f"{self.url}/api/v1/query_range",
                data={"query": expr, "start": t, "end": stop, "step": self.step},
                timeout=900,
            )
            body = response.json()
            if body.get("status") != "success":
                raise RuntimeError(f"query failed: {expr}\n{body.get('error')}")
            yield from body["data"]["result"]
            t = stop + self.step


def drop_recorded_series(prometheus: Prometheus) -> None:
    """Delete the series a deployment's own rules recorded (names with a colon) and its ALERTS,
    so the rules under test are evaluated afresh over its raw history (admin API)."""
    for match in ('{__name__=~".+:.+"}', '{__name__=~"ALERTS|ALERTS_FOR_STATE"}'):
        response = _http().post(
            f"{prometheus.url}/api/v1/admin/tsdb/delete_series",
            params={"match[]": match},
            timeout=600,
        )
        response.raise_for_status()
    _http().post(f"{prometheus.url}/api/v1/admin/tsdb/clean_tombstones", timeout=3600)


def rule_groups(rule_files: list[Path]) -> list[dict[str, Any]]:
    groups = []
    for path in rule_files:
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def recording_levels(groups: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Recording rules by dependency depth: level 0 reads only scraped series, level n reads
    series recorded at levels below n."""
    rules = [r for g in groups for r in g["rules"] if "record" in r]
    names = {r["record"] for r in rules}
    depends = {
        r["record"]: {
            n
            for n in names
            if n != r["record"] and re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", r["expr"])
        }
        for r in rules
    }
    level: dict[str, int] = {}

    def depth(name: str, seen: frozenset[str] = frozenset()) -> int:
        if name in level:
            return level[name]
        if name in seen:
            raise ValueError(f"recording rules depend on each other in a cycle: {name}")
        level[name] = d = max((depth(n, seen | {name}) + 1 for n in depends[name]), default=0)
        return d

    for r in rules:
        depth(r["record"])
    levels: list[list[dict[str, Any]]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for r in rules:
        levels[level[r["record"]]].append(r)
    return levels


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _format_labels(metric: dict[str, str]) -> str:
    name = metric.pop("__name__")
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(metric.items()))
    return f"{name}{{{labels}}}"


def _recorded_series(
    prometheus: Prometheus, rule: dict[str, Any], start: int, end: int
) -> list[tuple[str, dict[int, str]]]:
    # Results that differ only in their metric name (an `or` of a recorded series and an
    # expression) become one series once named after the rule, as in live evaluation: their
    # samples are merged in time order.
    merged: dict[str, dict[int, str]] = {}
    for series in prometheus.query_range(rule["expr"], start, end):
        metric = {**series["metric"], **rule.get("labels", {}), "__name__": rule["record"]}
        samples = merged.setdefault(_format_labels(metric), {})
        for t, value in series["values"]:
            samples.setdefault(int(t), value)
    return list(merged.items())


def record_level(
    prometheus: Prometheus, rules: list[dict[str, Any]], start: int, end: int, out: Path,
    workers: int = 2,
) -> int:  # fmt: skip
    """Evaluate one level's recording rules over [start, end] and write the results as
    OpenMetrics; returns the number of samples. Rules are queried ``workers`` at a time, so
    that Prometheus evaluates one while this process decodes another."""
    count = 0
    pending = iter(rules)
    with out.open("w") as f, ThreadPoolExecutor(workers) as pool:
        # at most `workers` results held at once, written in the rules' order
        running = deque(
            pool.submit(_recorded_series, prometheus, rule, start, end)
            for rule in itertools.islice(pending, workers)
        )
        while running:
            recorded = running.popleft().result()
            rule = next(pending, None)
            if rule is not None:
                running.append(pool.submit(_recorded_series, prometheus, rule, start, end))
            for name, samples in recorded:
                f.writelines(f"{name} {samples[t]} {t}\n" for t in sorted(samples))
                count += len(samples)
        f.write("# EOF\n")
    return count


def backfill_recording_rules(
    prometheus: Prometheus, rule_files: list[Path], start: int, end: int, work: Path
) -> list[int]:
    """All recording rules, level by level: evaluate, import as blocks, restart Prometheus so the
    next level reads them. Returns the sample count per level."""
    counts = []
    for index, rules in enumerate(recording_levels(rule_groups(rule_files))):
        path = work / f"recorded-{index}.om"
        counts.append(record_level(prometheus, rules, start, end, path))
        prometheus.stop()
        importer = Importer(prometheus.data_dir)
        importer.submit(path)
        importer.wait()
        prometheus.start()
    return counts
