"""tests/conftest.py serialises ast.parse: on CPython 3.11 two threads inside it at once raise
SystemError (the contract test's hypothesis thread against pytest's own parsing on the main
thread failed CI once). Two threads parse here while garbage with finalizers hands the GIL back
and forth in the middle of the AST constructor; without the lock about a third of the parses
fail."""

from __future__ import annotations

import ast
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SOURCE = "\n".join(
    f"def f{i}(a, b):\n    return [x * {i} for x in (a, b) if x]" for i in range(300)
)


class _Finalised:
    loop: object = None

    def __del__(self) -> None:
        sum(range(50))  # Python code run by the collector: the interpreter may switch threads


@contextmanager
def _switching_often() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _nested(depth: int, call: Callable[[], None]) -> None:
    if depth:
        _nested(depth - 1, call)
    else:
        call()


def test_two_threads_parse_at_once_without_a_system_error():
    errors: list[str] = []

    def parse_repeatedly() -> None:
        for _ in range(60):
            for _ in range(200):
                cycle = _Finalised()
                cycle.loop = cycle  # a cycle: only the collector frees it
            try:
                ast.parse(SOURCE)
            except SystemError as error:
                errors.append(str(error))

    # different stack depths, as the main thread's and a worker's are: the mismatch is between them
    threads = [threading.Thread(target=_nested, args=(d, parse_repeatedly)) for d in (10, 120)]
    with _switching_often():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == []
