"""The end-to-end harness: real processes, real HTTP, polling helpers.

A module's stack is either ``passiton-monitoring up --fast --base-port N`` itself (``UpStack``)
or, for topologies ``up`` does not run (two Alertmanagers, two bridges), processes started from
the same building blocks in ``passiton_monitoring.stack`` (``ProcessGroup``). Either way
Prometheus and Alertmanager read configs rendered from this repository's files with 1 s intervals.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

import asyncpg
import httpx

from passiton_monitoring.stack import Ports, ServiceSpec, tail
from tests.plain_http import http
from tests.ports import free_port_block

REPO = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("PASSITON_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PAGERDUTY_KEY = "e2e0000000000000000000000000e2e0"  # 32 characters, as PagerDuty requires
STRIPE_SECRET = "whsec_e2e_test_secret"
T = TypeVar("T")


# The contract's variables: never inherited from the environment the tests run in.
CONTRACT_VARIABLES = frozenset(
    (
        "DATABASE_URL",
        "SLACK_WEBHOOK_URL",
        "ALERT_EMAIL_RECIPIENTS",
        "ALERT_EMAIL_FROM",
        "SMTP_HOST",
        "SMTP_PORT",
        "SMTP_USERNAME",
        "SMTP_PASSWORD",
        "SMTP_TLS",
        "ALERT_SMS_RECIPIENTS",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_AUTH_TOKEN",
        "TWILIO_PHONE_NUMBER",
        "TWILIO_API_URL",
        "PAGERDUTY_INTEGRATION_KEY",
        "PAGERDUTY_EVENTS_URL",
        "BRIDGE_WEBHOOK_TOKEN",
        "EXPORTER_INGEST_TOKEN",
        "STRIPE_WEBHOOK_SECRET",
        "RETENTION_DAYS",
        "PASSITON_STATE_DIR",
        "PROMETHEUS_URL",
        "ALERTMANAGER_URL",
    )
)


def clean_environ() -> dict[str, str]:
    """This process's environment without the contract's variables (or any BRIDGE_/EXPORTER_)."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in CONTRACT_VARIABLES and not k.startswith(("BRIDGE_", "EXPORTER_"))
    }


class NotYet(AssertionError):
    """Raised by ``wait_until`` when the condition did not come true in time."""


def wait_until(
    condition: Callable[[], T | None],
    timeout: float,
    what: str,
    interval: float = 0.25,
    on_timeout: Callable[[], str] | None = None,
) -> T:
    """Poll ``condition`` until it returns something truthy; its value. Fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = on_timeout() if on_timeout else ""
            raise NotYet(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")
        time.sleep(interval)


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (the bridge migrates it); dropped afterwards."""
    name = f"passiton_e2e_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def query(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    async def run() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database_url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


# --- processes --------------------------------------------------------------------------------


class OutputCollector:
    """Reads a process's stdout in a thread, keeping every line."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in iter(stream.readline, ""):
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self, timeout: float = 5.0) -> None:
        self._thread.join(timeout)


def terminate(process: subprocess.Popen[Any], grace: float = 15.0) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    return process.returncode


@dataclass
class UpStack:
    """A running ``passiton-monitoring up --fast --base-port N``."""

    process: subprocess.Popen[str]
    output: OutputCollector
    ports: Ports
    state_dir: Path
    env: dict[str, str]

    @classmethod
    def start(
        cls,
        state_dir: Path,
        env: Mapping[str, str],
        *options: str,
        ready_within: float = 60.0,
    ) -> UpStack:
        """``options`` default to ``--fast``."""
        base = free_port_block()
        full_env = {**clean_environ(), **env, "PASSITON_STATE_DIR": str(state_dir)}
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "passiton_monitoring",
                "up",
                *(options or ("--fast",)),
                "--base-port",
                str(base),
            ],
            cwd=REPO,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        stack = cls(
            process, OutputCollector(process.stdout), Ports.from_base(base), state_dir, full_env
        )
        try:
            wait_until(
                lambda: (
                    "Ctrl-C stops everything." in stack.output.text or process.poll() is not None
                ),
                ready_within,
                "`up` to report its processes",
                on_timeout=lambda: stack.output.text,
            )
            assert process.poll() is None, f"`up` exited early:\n{stack.output.text}"
        except BaseException:
            stack.stop()
            raise
        return stack

    @property
    def exporter_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.exporter}"

    @property
    def exporter_public_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.exporter_public}"

    @property
    def bridge_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.bridge}"

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.prometheus}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.alertmanager}"

    def service_pid(self, name: str) -> int:
        data = json.loads((self.state_dir / "up.json").read_text())
        return int(data["services"][name]["pid"])

    def log(self, name: str) -> str:
        return tail(self.state_dir / "logs" / f"{name}.log", 40)

    def diagnostics(self) -> str:
        logs = "\n".join(
            f"--- {n} ---\n{self.log(n)}" for n in ("exporter", "bridge", "alertmanager")
        )
        return f"--- up ---\n{self.output.text[-4000:]}\n{logs}"

    def stop(self) -> int:
        code = terminate(self.process, 30)
        self.output.join()
        return code


@dataclass
class ProcessGroup:
    """Processes started from ``ServiceSpec``s, each logging to its file; stopped together."""

    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    specs: dict[str, ServiceSpec] = field(default_factory=dict)

    def start(self, spec: ServiceSpec) -> None:
        spec.log_file.parent.mkdir(parents=True, exist_ok=True)
        with spec.log_file.open("ab") as log:
            self.processes[spec.name] = subprocess.Popen(
                spec.argv,
                cwd=REPO,
                env=dict(spec.env) if spec.env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self.specs[spec.name] = spec

    def wait_ready(self, within: float = 60.0) -> None:
        def all_ready() -> bool:
            for name, spec in self.specs.items():
                if self.processes[name].poll() is not None:
                    raise AssertionError(f"{name} exited:\n{tail(spec.log_file, 40)}")
                if not http_ok(spec.url + spec.ready_path):
                    return False
            return True

        wait_until(all_ready, within, "every process to be ready", on_timeout=self.diagnostics)

    def stop(self, name: str) -> int:
        return terminate(self.processes[name])

    def stop_all(self) -> None:
        for name in reversed(list(self.processes)):
            self.stop(name)

    def diagnostics(self) -> str:
        return "\n".join(f"--- {n} ---\n{tail(s.log_file, 30)}" for n, s in self.specs.items())


# --- HTTP helpers -----------------------------------------------------------------------------


def http_ok(url: str) -> bool:
    try:
        return http().get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def post_events(exporter_url: str, events: list[dict[str, Any]]) -> None:
    response = http().post(f"{exporter_url}/v1/events", json=events, timeout=10.0)
    assert response.status_code == 202, response.text
    assert response.json()["rejected"] == 0, response.text


class BackgroundTraffic:
    """Events posted to the exporter every ``interval`` seconds while the ``with`` block runs:
    the first batch at once (a refused one fails the ``with`` at its start), the rest on a
    thread. Subclasses say what a tick sends (``batch``) and may note what went in (``posted``).
    The thread's failure is kept in ``error`` for the test to report, not lost with the thread."""

    def __init__(self, exporter_url: str, interval: float = 0.5) -> None:
        self.exporter_url = exporter_url
        self.interval = interval
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def batch(self) -> list[dict[str, Any]]:
        """The events of one tick."""
        return []

    def posted(self, events: list[dict[str, Any]]) -> None:
        """Called once ``events`` were accepted (202)."""

    def _tick(self) -> None:
        events = self.batch()
        post_events(self.exporter_url, events)
        self.posted(events)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                self._tick()
        except BaseException as exc:  # reported by the test
            self.error = exc

    def __enter__(self) -> Self:
        self._tick()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def send_bad_stripe_signatures(exporter_url: str, count: int) -> None:
    """Stripe webhook requests signed with the wrong secret: each is a 400 and a security signal."""
    with httpx.Client(timeout=10.0) as client:
        for i in range(count):
            body = json.dumps({"id": f"evt_forged_{uuid.uuid4().hex}", "type": "charge.succeeded"})
            stamp = int(time.time())
            forged = hmac.new(b"not-the-secret", f"{stamp}.{body}".encode(), hashlib.sha256)
            response = client.post(
                f"{exporter_url}/v1/stripe/webhook",
                content=body,
                headers={
                    "Stripe-Signature": f"t={stamp},v1={forged.hexdigest()}",
                    "Content-Type": "application/json",
                },
            )
            assert response.status_code == 400, (i, response.text)


def prometheus_api(prometheus_url: str, path: str, **params: Any) -> Any:
    response = http().get(f"{prometheus_url}/api/v1/{path}", params=params, timeout=10.0)
    response.raise_for_status()
    body = response.json()
    assert body["status"] == "success", body
    return body["data"]


def alertmanager_alerts(alertmanager_url: str, **filters: str) -> list[dict[str, Any]]:
    params = [("filter", f'{k}="{v}"') for k, v in filters.items()]
    response = http().get(f"{alertmanager_url}/api/v2/alerts", params=params, timeout=10.0)
    response.raise_for_status()
    return response.json()


def bridge_metric(bridge_url: str, name: str) -> float | None:
    text = http().get(f"{bridge_url}/metrics", timeout=5.0).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def amtool(alertmanager_url: str, *args: str) -> str:
    result = subprocess.run(
        ["amtool", f"--alertmanager.url={alertmanager_url}", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# --- fake channel contents --------------------------------------------------------------------


def slack_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Each Slack message flattened to one string (text and every block's text)."""
    return [json.dumps(m) for m in messages]


def pagerduty_events(events: list[dict[str, Any]], action: str, contains: str) -> list[dict]:
    return [e for e in events if e.get("event_action") == action and contains in json.dumps(e)]
