"""Reading a YAML file as PyYAML's node tree, so that every value keeps its place in the file:
``NodeReader`` collects errors as ``FILE:LINE:COL: message`` (1-based) instead of stopping at
the first, checks mappings for unknown (misspelt) and duplicate keys, and reads scalars as the
text written (``09:00`` stays ``"09:00"``, not YAML 1.1's sexagesimal 540)."""

from __future__ import annotations

import difflib
from collections.abc import Collection
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_NULL = "tag:yaml.org,2002:null"
_INT = "tag:yaml.org,2002:int"


class NodeReader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._errors: list[tuple[int, int, str]] = []

    @property
    def errors(self) -> list[str]:
        """Every error so far, in file order."""
        ordered = sorted(self._errors, key=lambda e: (e[0], e[1]))
        return [f"{self.path}:{line}:{col}: {message}" for line, col, message in ordered]

    def error(self, node: Node | None, message: str) -> None:
        mark = node.start_mark if node is not None else None
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self._errors.append((line, col, message))

    def compose(self, text: str) -> Node | None:
        """The document's root node; None (with the error recorded) when it does not parse."""
        try:
            nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = " ".join(p for p in (exc.context, exc.problem) if p)
            self._errors.append((line, col, f"not valid YAML: {problem}"))
            return None
        except yaml.YAMLError as exc:
            self._errors.append((1, 1, f"not valid YAML: {exc}"))
            return None
        if not nodes or is_null(nodes[0]):
            self._errors.append((1, 1, "the file is empty"))
            return None
        if len(nodes) > 1:
            self.error(nodes[1], "more than one YAML document; the on-call file is one")
        return nodes[0]

    def mapping(
        self,
        node: Node,
        what: str,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> dict[str, Node] | None:
        """A mapping's values by key; unknown keys (with a suggestion), duplicates and missing
        required keys are errors. ``<<`` merge keys are applied first."""
        if not isinstance(node, MappingNode):
            self.error(node, f"{what} must be a mapping (key: value)")
            return None
        try:
            yaml.SafeLoader("").flatten_mapping(node)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or node.start_mark
            self._errors.append((mark.line + 1, mark.column + 1, f"{what}: {exc.problem} (<<)"))
            return None
        found: dict[str, Node] = {}
        suggested: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.error(key_node, f"{what}: keys must be plain names")
                continue
            key = key_node.value
            if key in found:
                self.error(key_node, f"{what}: {key!r} given twice")
                continue
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                suggested.update(close)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.error(key_node, f"{what}: unknown key {key!r}{hint} (known: {_list(allowed)})")
                continue
            found[key] = value_node
        for key in required:
            if key not in found and key not in suggested:  # a typo is one error, not two
                self.error(node, f"{what}: {key!r} is missing")
        return found

    def sequence(self, node: Node, what: str) -> list[Node] | None:
        if is_null(node):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"{what} must be a list")
            return None
        return list(node.value)

    def text(self, node: Node, what: str) -> str | None:
        """A scalar as written; empty or not a scalar is an error (None)."""
        if not isinstance(node, ScalarNode):
            self.error(node, f"{what} must be a single value, not a list or mapping")
            return None
        if is_null(node) or not node.value.strip():
            self.error(node, f"{what} must not be empty")
            return None
        return str(node.value).strip()

    def texts(self, node: Node, what: str) -> list[tuple[Node, str]]:
        """A list of scalars (a single scalar counts as a list of one)."""
        items = [node] if isinstance(node, ScalarNode) and not is_null(node) else None
        if items is None:
            items = self.sequence(node, what) or []
        found = []
        for item in items:
            value = self.text(item, f"{what} item")
            if value is not None:
                found.append((item, value))
        return found

    def integer(self, node: Node, what: str) -> int | None:
        if not isinstance(node, ScalarNode) or node.tag != _INT:
            self.error(node, f"{what} must be a whole number")
            return None
        return int(yaml.SafeLoader("").construct_yaml_int(node))


def is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _list(names: Collection[str]) -> str:
    return ", ".join(sorted(names))
