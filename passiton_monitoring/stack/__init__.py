"""The ``up`` dev stack: every process of the monitoring stack on one machine, from a checkout."""

from passiton_monitoring.stack.supervise import *  # noqa: F403  (split by concern next)
