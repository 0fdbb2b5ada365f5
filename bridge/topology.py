"""The platform's causal map (``bridge/topology.yml``): nodes with the alert names that signal
them, edges from a cause to its effects. Loaded and validated once at start-up; an error names
the entry at fault."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class TopologyError(ValueError):
    """The causal map is invalid; the message names the entry."""


@dataclass(frozen=True)
class Topology:
    node_of: Mapping[str, str]  # alert name -> node
    effects: Mapping[str, frozenset[str]]  # node -> every node downstream of it (transitive)
    levels: Mapping[str, int]  # node -> longest path from a root (0: nothing upstream)
    unmapped: frozenset[str]

    def related(self, a: str, b: str) -> bool:
        """The same node, or one upstream of the other."""
        na, nb = self.node_of.get(a), self.node_of.get(b)
        if na is None or nb is None:
            return False
        return na == nb or nb in self.effects[na] or na in self.effects[nb]

    def level(self, alertname: str) -> int | None:
        node = self.node_of.get(alertname)
        return None if node is None else self.levels[node]

    @property
    def alertnames(self) -> frozenset[str]:
        return frozenset(self.node_of)


def parse_topology(data: Any) -> Topology:
    if not isinstance(data, dict):
        raise TopologyError("topology: expected a mapping with nodes, edges, unmapped")
    unknown = set(data) - {"nodes", "edges", "unmapped"}
    if unknown:
        raise TopologyError(f"topology: unknown key {sorted(unknown)[0]!r}")
    nodes = data.get("nodes") or {}
    if not isinstance(nodes, dict):
        raise TopologyError("topology: nodes must be a mapping of node -> alert names")
    node_of: dict[str, str] = {}
    for node, alerts in nodes.items():
        if not isinstance(alerts, list) or not all(isinstance(a, str) and a for a in alerts):
            raise TopologyError(f"node {node!r}: expected a list of alert names")
        for alert in alerts:
            if alert in node_of:
                raise TopologyError(f"node {node!r}: {alert} is already in node {node_of[alert]!r}")
            node_of[alert] = node
    edges = data.get("edges") or {}
    if not isinstance(edges, dict):
        raise TopologyError("topology: edges must be a mapping of cause -> effects")
    direct: dict[str, set[str]] = {n: set() for n in nodes}
    for cause, effects in edges.items():
        if cause not in nodes:
            raise TopologyError(f"edge {cause!r}: not a node")
        if not isinstance(effects, list):
            raise TopologyError(f"edge {cause!r}: expected a list of nodes")
        for effect in effects:
            if effect not in nodes:
                raise TopologyError(f"edge {cause!r} -> {effect!r}: not a node")
            if effect == cause:
                raise TopologyError(f"edge {cause!r} -> {effect!r}: a node cannot cause itself")
            direct[cause].add(effect)
    reach: dict[str, frozenset[str]] = {}

    def downstream(node: str, path: tuple[str, ...]) -> frozenset[str]:
        if node in path:
            cycle = " -> ".join((*path[path.index(node) :], node))
            raise TopologyError(f"edge {path[-1]!r}: a cycle {cycle}")
        if node not in reach:
            found: set[str] = set()
            for effect in direct[node]:
                found |= {effect, *downstream(effect, (*path, node))}
            reach[node] = frozenset(found)
        return reach[node]

    for node in nodes:
        downstream(node, ())
    levels: dict[str, int] = {}

    def level(node: str) -> int:
        if node not in levels:
            causes = [c for c in nodes if node in direct[c]]
            levels[node] = max((level(c) + 1 for c in causes), default=0)
        return levels[node]

    for node in nodes:
        level(node)
    unmapped = data.get("unmapped") or []
    if not isinstance(unmapped, list) or not all(isinstance(a, str) for a in unmapped):
        raise TopologyError("unmapped: expected a list of alert names")
    for alert in unmapped:
        if alert in node_of:
            raise TopologyError(f"unmapped: {alert} is also in node {node_of[alert]!r}")
    return Topology(node_of, reach, levels, frozenset(unmapped))


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_topology(path: Path | None = None) -> Topology:
    """The causal map in ``path``, or the one packaged with the bridge."""
    try:
        if path is None:
            text = (resources.files("bridge") / "topology.yml").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        # libyaml's parser where it is built: every bridge reads the map when it starts
        data = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)
    except (OSError, yaml.YAMLError) as exc:
        raise TopologyError(
            f"topology: cannot read {path or 'bridge/topology.yml'}: {exc}"
        ) from exc
    return parse_topology(data)
