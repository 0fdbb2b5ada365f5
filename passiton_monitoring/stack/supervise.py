"""``passiton-monitoring up``: the whole stack on one machine, supervised.

The exporter and the bridge run as subprocesses of this interpreter (the real services);
Prometheus, Alertmanager and the blackbox exporter run when their binaries are installed. Their
configuration is rendered from this repository's ``prometheus/prometheus.yml`` and
``alertmanager/alertmanager.yml`` (the one source of truth): the default ``localhost`` ports are
replaced by the ports of this stack, rule files become absolute paths, the bridge's URL and token
file are filled in, and the copies are written into the state directory next to the data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import httpx

from bridge.storage import StorageUnavailable
from console.demo_user import ensure_demo_user
from passiton_monitoring.stack.plan import (
    ServiceSpec,
    StackConfig,
    StackPlan,
    browsable,
    plan_stack,
    port_in_use,
)
from passiton_monitoring.stack.ports import INSTALL_HINT, StackError

# --- supervision ------------------------------------------------------------------------------


@dataclass
class Running:
    spec: ServiceSpec
    process: asyncio.subprocess.Process
    ready: bool = False
    exit_reported: bool = False
    pump: asyncio.Task[None] | None = None


async def is_ready(client: httpx.AsyncClient, spec: ServiceSpec) -> bool:
    try:
        response = await client.get(spec.url + spec.ready_path)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


class Supervisor:
    """Starts services, reports their health and deaths, stops them all in reverse order."""

    def __init__(self, specs: Sequence[ServiceSpec], out: TextIO) -> None:
        self.specs = list(specs)
        self.out = out
        self.running: list[Running] = []
        self.died: list[str] = []

    def say(self, text: str) -> None:
        # A closed terminal or pipe must not keep ``stop()`` from stopping the processes.
        with contextlib.suppress(OSError, ValueError):
            self.out.write(text + "\n")
            self.out.flush()

    async def start(self) -> None:
        for spec in self.specs:
            spec.log_file.parent.mkdir(parents=True, exist_ok=True)
            log = spec.log_file.open("ab")
            try:
                process = await asyncio.create_subprocess_exec(
                    *spec.argv,
                    env=dict(spec.env) if spec.env is not None else None,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE if spec.show_stdout else log,
                    stderr=log,
                    start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
                )
            finally:
                log.close()
            running = Running(spec, process)
            if spec.show_stdout:
                running.pump = asyncio.create_task(self._pump(running))
            self.running.append(running)

    async def _pump(self, running: Running) -> None:
        assert running.process.stdout is not None
        while line := await running.process.stdout.readline():
            self.out.write(line.decode("utf-8", "replace"))
            self.out.flush()

    async def wait_ready(self, within: float = 60.0, stop: asyncio.Event | None = None) -> bool:
        """Wait until every service answers its readiness endpoint; False if one did not."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                await self.check(client, announce=False)
                pending = [r for r in self.running if not r.ready and r.process.returncode is None]
                if not pending or time.monotonic() > deadline or (stop and stop.is_set()):
                    return all(r.ready for r in self.running)
                await asyncio.sleep(0.2)

    async def check(self, client: httpx.AsyncClient, *, announce: bool = True) -> None:
        for r in self.running:
            if r.process.returncode is not None:
                if not r.exit_reported:
                    r.exit_reported = True
                    r.ready = False
                    self.died.append(r.spec.name)
                    self.say(
                        f"!! {r.spec.name} exited with code {r.process.returncode} (not "
                        f"restarted); last lines of {r.spec.log_file}:\n{tail(r.spec.log_file)}"
                    )
                continue
            ready = await is_ready(client, r.spec)
            if announce and ready != r.ready:
                self.say(f"{r.spec.name}: {'ready again' if ready else 'NOT READY'} ({r.spec.url})")
            r.ready = ready

    async def watch(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client:
            while not stop.is_set():
                await self.check(client)
                if self.running and all(r.process.returncode is not None for r in self.running):
                    self.say("every process has exited")
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval)

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM everything still running (newest first), wait ``grace``, then SIGKILL."""
        for r in reversed(self.running):
            if r.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    r.process.send_signal(signal.SIGTERM)
        waits = [asyncio.wait_for(r.process.wait(), grace) for r in self.running]
        results = await asyncio.gather(*waits, return_exceptions=True)
        for r, result in zip(self.running, results, strict=True):
            if isinstance(result, TimeoutError):
                self.say(f"{r.spec.name} did not stop within {grace:.0f}s; killing it")
                with contextlib.suppress(ProcessLookupError):
                    r.process.kill()
                await r.process.wait()
        for r in self.running:
            if r.pump is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(r.pump, 2.0)


def tail(path: Path, lines: int = 10) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "  (no log)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:]) or "  (empty log)"


def write_state(config: StackConfig, supervisor: Supervisor) -> Path:
    """``up.json`` in the state directory: each process's URL, pid and log, for other tools."""
    path = config.state_dir / "up.json"
    data = {
        "started_at": time.time(),
        "pid": os.getpid(),
        "services": {
            r.spec.name: {"url": r.spec.url, "pid": r.process.pid, "log": str(r.spec.log_file)}
            for r in supervisor.running
        },
    }
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def banner(config: StackConfig, plan: StackPlan, supervisor: Supervisor) -> str:
    lines = [f"PassItOn monitoring is up (state: {config.state_dir})", ""]
    for r in supervisor.running:
        state = (
            "ready" if r.ready else ("EXITED" if r.process.returncode is not None else "starting")
        )
        lines.append(f"  {r.spec.name:<13} {r.spec.url:<28} {state}")
    public = browsable(f"{config.host}:{config.ports.exporter_public}")
    lines.append(f"  {'exporter':<13} {public:<28} public: beacon, Stripe webhook")
    for name in plan.missing:
        lines.append(f"  {name:<13} {'(not installed)':<28} -")
    lines.append("")
    if "console" in config.channels:
        lines.append(
            "Notifications: console (printed below; set SLACK_WEBHOOK_URL, SMTP_HOST, ...)"
        )
    else:
        lines.append("Notifications: " + ", ".join(config.channels))
    lines.append(f"Alert database: {config.database}")
    bridge_url = next((s.url for s in plan.services if s.name == "bridge"), "")
    lines.append(f"Console: {bridge_url}/console/ (users: passiton-monitoring user add NAME)")
    lines.append(f"Logs: {config.state_dir / 'logs'}")
    if plan.missing:
        lines.append(
            f"Prometheus/Alertmanager binaries not found ({', '.join(plan.missing)}): "
            f"only the exporter and the bridge run. Install them with: {INSTALL_HINT}"
        )
    if config.timing is not None:
        t = config.timing
        lines.append(
            f"Short intervals: scrape {t.scrape_seconds}s, evaluation {t.evaluation_seconds}s, "
            f"group_wait {t.group_wait_seconds}s"
        )
    lines.append("Ctrl-C stops everything.")
    return "\n".join(lines)


DemoRunner = Callable[[str, str, asyncio.Event, TextIO], Any]


async def run_stack(
    config: StackConfig,
    out: TextIO,
    *,
    demo: DemoRunner | None = None,
    stop: asyncio.Event | None = None,
) -> int:
    """Run until SIGINT/SIGTERM (or ``stop``); 0 after a clean stop, 1 if a process died."""
    plan = plan_stack(config)
    taken = [f"{s.name} {s.port}" for s in plan.services if port_in_use(config.host, s.port)]
    if taken:
        raise StackError(
            f"already in use: {', '.join(taken)}. Another `up`, or the Debian services "
            "(sudo systemctl stop prometheus prometheus-alertmanager)? "
            "Or choose other ports with --base-port N."
        )
    supervisor = Supervisor(plan.services, out)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    demo_task: asyncio.Task[Any] | None = None
    try:
        await supervisor.start()
        write_state(config, supervisor)
        ready = await supervisor.wait_ready(stop=stop)
        supervisor.say(banner(config, plan, supervisor))
        if not ready:
            supervisor.say("!! not every process became ready; see the logs above")
        if demo is not None and not stop.is_set():
            try:
                user, password = await ensure_demo_user(config.env, config.state_dir)
                supervisor.say(f"Console login: {user} / {password}")
            except (StorageUnavailable, OSError) as exc:
                supervisor.say(f"!! no console login created: {exc}")
            exporter = next(s.url for s in plan.services if s.name == "exporter")
            demo_task = asyncio.create_task(demo(exporter, config.ingest_token, stop, out))
        await supervisor.watch(stop)
    finally:
        stop.set()
        if demo_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(demo_task, 10)
        supervisor.say("stopping...")
        await supervisor.stop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        supervisor.say("stopped")
    return 1 if supervisor.died else 0


def up(args: Any, env: Mapping[str, str], out: TextIO | None = None) -> int:
    """The ``up`` subcommand: ``args`` from its argparse parser (demo, base_port, fast, ...)."""
    out = out or sys.stdout
    for noisy in ("httpx", "httpcore"):  # one line per readiness poll otherwise
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        config = StackConfig.from_env(
            env,
            base_port=args.base_port,
            demo=args.demo,
            fast=args.fast,
            host=args.host,
            config_dir=args.config_dir,
        )
    except StackError as exc:
        print(f"passiton-monitoring up: {exc}", file=sys.stderr)
        return 2
    demo = None
    if config.demo:
        from passiton_monitoring.stack.demo import run_demo

        demo = run_demo
    try:
        return asyncio.run(run_stack(config, out, demo=demo))
    except StackError as exc:
        print(f"passiton-monitoring up: {exc}", file=sys.stderr)
        return 2
