"""The Prometheus text format for the exporter's registry, with each series' line prefix cached.

``generate_latest`` rebuilds every sample's name and label string on every scrape. The
exporter's label values are bounded and never change for a series, so the rendered prefix
(``name{a="x",b="y"} ``) is computed once and kept; a scrape then only formats values. The
output is byte-identical to ``generate_latest`` (a test holds it to that). It reads
client_python's private attributes (``_type``, ``_name``, ...), so ``pyproject.toml`` pins
``prometheus-client`` to the versions that test passed with; widen the pin only after it passes.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.utils import floatToGoString

_TYPE_SUFFIX = {"counter": "_total"}


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class CachedExposition:
    def __init__(self, metrics: Iterable[MetricWrapperBase]) -> None:
        self._metrics = list(metrics)
        self._headers: dict[int, str] = {}
        self._prefixes: dict[tuple, str] = {}

    def _header(self, metric: MetricWrapperBase) -> str:
        header = self._headers.get(id(metric))
        if header is None:
            mtype = metric._type
            name = metric._name + _TYPE_SUFFIX.get(mtype, "")
            doc = metric._documentation.replace("\\", r"\\").replace("\n", r"\n")
            header = self._headers[id(metric)] = f"# HELP {name} {doc}\n# TYPE {name} {mtype}\n"
        return header

    def _prefix(
        self, metric: MetricWrapperBase, labelvalues: tuple[str, ...], suffix: str, extra: dict
    ) -> str:
        key = (id(metric), labelvalues, suffix, tuple(extra.items()))
        prefix = self._prefixes.get(key)
        if prefix is None:
            labels = sorted([*zip(metric._labelnames, labelvalues, strict=True), *extra.items()])
            labelstr = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            name = metric._name + suffix
            prefix = self._prefixes[key] = f"{name}{{{labelstr}}} " if labelstr else f"{name} "
        return prefix

    def render(self) -> bytes:
        out: list[str] = []
        append = out.append
        for metric in self._metrics:
            append(self._header(metric))
            if metric._labelnames:
                with metric._lock:
                    children = list(metric._metrics.items())
            else:
                children = [((), metric)]
            for labelvalues, child in children:
                for suffix, extra, value, *_ in child._child_samples():
                    append(self._prefix(metric, labelvalues, suffix, extra))
                    append(floatToGoString(value))
                    append("\n")
        return "".join(out).encode()
