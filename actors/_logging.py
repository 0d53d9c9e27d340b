"""The runtime's logs: structlog when the program configured it, else the standard library.

A library must not write to a program's stdout: stdout may be the program's output (a pipe, a
protocol). structlog unconfigured prints to stdout, so the runtime's loggers (`get_logger`)
decide at each call: once the program has called ``structlog.configure`` (as ``piano run``
does), lines go through the program's structlog configuration; until then they go to the
standard library's ``logging`` under the logger's name (``actors``, ``actors.pipeline...``,
``supervisors``), which an unconfigured program shows on stderr from WARNING up (Python's
last-resort handler) and nowhere else. So an embedding program sees a crash report on stderr
and nothing on stdout; it configures either library to choose more, less or elsewhere
(``logging.getLogger("actors").setLevel(logging.ERROR)``, or ``structlog.configure(...)``).
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import structlog

__all__ = ["get_logger"]


@functools.cache
def _stdlib(name: str) -> Any:
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=[
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(key_order=["event"]),
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
    )


class _RuntimeLogger:
    """A bound logger that picks its destination at each call (see the module)."""

    __slots__ = ("_context", "_name")

    def __init__(self, name: str, context: dict[str, Any]) -> None:
        self._name = name
        self._context = context

    def bind(self, **values: Any) -> _RuntimeLogger:
        return _RuntimeLogger(self._name, {**self._context, **values})

    def _target(self) -> Any:
        if structlog.is_configured():
            return structlog.get_logger(self._name).bind(**self._context)
        return _stdlib(self._name).bind(**self._context)

    def __getattr__(self, method: str) -> Any:
        return getattr(self._target(), method)


def get_logger(name: str) -> Any:
    """The runtime's logger `name` (see the module documentation)."""
    return _RuntimeLogger(name, {})
