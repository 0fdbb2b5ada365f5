"""The stack's shapes: ports, timing, addresses of each role, and the error ``up`` reports."""

from __future__ import annotations

from dataclasses import dataclass

BLACKBOX_DEFAULT_PORT = 9115
INSTALL_HINT = (
    "sudo apt-get install prometheus prometheus-alertmanager prometheus-blackbox-exporter"
)
TOKEN_FILE = "bridge-webhook-token"  # noqa: S105 (a file name)
ALERTMANAGER_BINARIES = ("prometheus-alertmanager", "alertmanager")
BLACKBOX_BINARIES = ("prometheus-blackbox-exporter", "blackbox_exporter")


class StackError(RuntimeError):
    """The stack cannot be planned or started (missing config file, bad option...)."""


# --- ports, timing, addresses -----------------------------------------------------------------


@dataclass(frozen=True)
class Ports:
    exporter: int = 9820
    bridge: int = 9821
    prometheus: int = 9090
    alertmanager: int = 9093
    blackbox: int = BLACKBOX_DEFAULT_PORT

    @classmethod
    def from_base(cls, base: int | None) -> Ports:
        """The contract's ports, or ``base``, ``base+1``, ``base+2``, ``base+3`` (blackbox +4)."""
        if base is None:
            return cls()
        if not 1 <= base <= 65535 - 4:
            raise StackError(f"--base-port must be between 1 and 65531, got {base}")
        return cls(base, base + 1, base + 2, base + 3, base + 4)


@dataclass(frozen=True)
class Timing:
    """Shorter intervals for demos and tests; ``None`` keeps the repository's value."""

    scrape_seconds: int
    evaluation_seconds: int
    group_wait_seconds: int
    group_interval_seconds: int
    repeat_interval_seconds: int | None = None
    resend_delay_seconds: int | None = None


FAST = Timing(1, 1, 1, 1, repeat_interval_seconds=5, resend_delay_seconds=1)
DEMO = Timing(5, 5, 5, 10, resend_delay_seconds=5)


@dataclass(frozen=True)
class Addresses:
    """Where each role listens in this stack, as ``host:port`` (several for HA roles)."""

    exporter: str
    bridge: tuple[str, ...]
    prometheus: str
    alertmanager: tuple[str, ...]
    blackbox: str

    @classmethod
    def single(cls, host: str, ports: Ports) -> Addresses:
        return cls(
            exporter=f"{host}:{ports.exporter}",
            bridge=(f"{host}:{ports.bridge}",),
            prometheus=f"{host}:{ports.prometheus}",
            alertmanager=(f"{host}:{ports.alertmanager}",),
            blackbox=f"{host}:{ports.blackbox}",
        )

    def all_for(self, role: str) -> tuple[str, ...]:
        value = getattr(self, role)
        return value if isinstance(value, tuple) else (value,)
