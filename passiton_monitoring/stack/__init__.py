"""The ``up`` dev stack, split by concern; it only works from a checkout (it reads
``prometheus/`` and ``alertmanager/``).

- ``ports``: the stack's shapes (ports, timing, addresses) and ``StackError``;
- ``render``: Prometheus/Alertmanager/blackbox configs from the repository's files (also used by
  ``deploy/render_compose.py``);
- ``plan``: which processes run, with which argv, environment and files;
- ``supervise``: starting, watching and stopping them (``up``);
- ``demo``: demo traffic through the Python client (``up --demo``).
"""

from passiton_monitoring.stack.plan import (
    ServiceSpec,
    StackConfig,
    StackPlan,
    alertmanager_argv,
    blackbox_argv,
    browsable,
    find_binary,
    find_config_dir,
    plan_stack,
    port_in_use,
    prometheus_argv,
    python_service_argv,
)
from passiton_monitoring.stack.ports import (
    ALERTMANAGER_BINARIES,
    BLACKBOX_BINARIES,
    BLACKBOX_DEFAULT_PORT,
    DEMO,
    FAST,
    INSTALL_HINT,
    TOKEN_FILE,
    Addresses,
    Ports,
    StackError,
    Timing,
)
from passiton_monitoring.stack.render import (
    duration,
    ensure_token_file,
    parse_duration,
    render_alertmanager,
    render_blackbox,
    render_prometheus,
    write_yaml,
)
from passiton_monitoring.stack.supervise import (
    DemoRunner,
    Running,
    Supervisor,
    banner,
    is_ready,
    run_stack,
    tail,
    up,
    write_state,
)

__all__ = [
    "ALERTMANAGER_BINARIES",
    "BLACKBOX_BINARIES",
    "BLACKBOX_DEFAULT_PORT",
    "DEMO",
    "FAST",
    "INSTALL_HINT",
    "TOKEN_FILE",
    "Addresses",
    "DemoRunner",
    "Ports",
    "Running",
    "ServiceSpec",
    "StackConfig",
    "StackError",
    "StackPlan",
    "Supervisor",
    "Timing",
    "alertmanager_argv",
    "banner",
    "blackbox_argv",
    "browsable",
    "duration",
    "ensure_token_file",
    "find_binary",
    "find_config_dir",
    "is_ready",
    "parse_duration",
    "plan_stack",
    "port_in_use",
    "prometheus_argv",
    "python_service_argv",
    "render_alertmanager",
    "render_blackbox",
    "render_prometheus",
    "run_stack",
    "tail",
    "up",
    "write_state",
    "write_yaml",
]
