"""Compile and run console input the way the Python REPL does, plus top-level ``await``.

Lines are pushed one at a time into a buffer; `codeop` decides when the buffer holds a complete
statement (a compound statement ends with a blank line, as in the REPL). A complete statement
runs in the session namespace on the event loop; if it ends with an expression, that
expression's value is the statement's value (shown by the console and stored in ``_``). A
coroutine value is awaited first, so ``call("counter", "get")`` shows the reply.
"""

from __future__ import annotations
import __future__

import ast
import codeop
import inspect
import itertools
import linecache
import pprint
import rlcompleter
import traceback
from typing import Any

__all__ = ["NO_VALUE", "Evaluator"]

NO_VALUE: Any = object()
"""What `Evaluator.run` returns for a statement without a value to show."""

_FUTURE_FLAGS = 0
for _name in __future__.all_feature_names:
    _FUTURE_FLAGS |= getattr(__future__, _name).compiler_flag

_MAX_COMPLETIONS = 500
_MACHINERY = frozenset({__file__, __file__.replace("_evaluator.py", "_server.py")})
"""Source files of the frames that run console input, left out of its tracebacks."""
_sessions = itertools.count(1)


class Evaluator:
    """The input buffer and namespace of one console session."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace
        self._compiler = codeop.CommandCompiler()
        self._compiler.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self._buffer: list[str] = []
        self._prefix = f"<console-{next(_sessions)}"
        self._statements = itertools.count(1)
        self._filenames: list[str] = []

    @property
    def continuing(self) -> bool:
        """A statement has been started and is not complete yet."""
        return bool(self._buffer)

    def reset(self) -> None:
        """Drop a half-typed statement."""
        self._buffer.clear()

    def push(self, line: str) -> str | None:
        """Add one line; the complete statement if the buffer now holds one, else None.

        Raises `SyntaxError` (and drops the buffer) if the buffer can never become valid.
        Blank input outside a statement yields the empty string.
        """
        self._buffer.append(line)
        source = "\n".join(self._buffer)
        try:
            code = self._compiler(source, "<console>", "single")
        except (SyntaxError, ValueError, OverflowError):
            self._buffer.clear()
            raise
        if code is None:
            return None
        self._buffer.clear()
        return source if source.strip() else ""

    async def run(self, source: str) -> Any:
        """Run one complete statement; returns its value, or `NO_VALUE`."""
        filename = f"{self._prefix}-{next(self._statements)}>"
        lines = [line + "\n" for line in source.splitlines()]
        linecache.cache[filename] = (len(source), None, lines, filename)
        self._filenames.append(filename)
        flags = (self._compiler.compiler.flags & _FUTURE_FLAGS) | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        module = ast.parse(source, filename, "exec")
        last: ast.expr | None = None
        if module.body and isinstance(final := module.body[-1], ast.Expr):
            module.body.pop()
            last = final.value
        if module.body:
            await _execute(compile(module, filename, "exec", flags, dont_inherit=True), self)
        if last is None:
            return NO_VALUE
        expression = ast.Expression(last)
        code = compile(expression, filename, "eval", flags, dont_inherit=True)
        value = await _execute(code, self)
        if inspect.iscoroutine(value):
            value = await value
        if value is None:
            return NO_VALUE
        self.namespace["_"] = value
        return value

    def complete(self, text: str) -> list[str]:
        """Completions of `text` over the namespace, as `rlcompleter` finds them."""
        completer = rlcompleter.Completer(self.namespace)
        try:
            matches = (
                completer.attr_matches(text) if "." in text else completer.global_matches(text)
            )
        except Exception:
            return []
        return sorted(set(matches))[:_MAX_COMPLETIONS]

    def format_exception(self, exc: BaseException) -> str:
        """The traceback of an exception raised by console input, without the console's frames."""
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename in _MACHINERY:
            tb = tb.tb_next
        return "".join(traceback.format_exception(type(exc), exc, tb))

    def close(self) -> None:
        """Forget the source lines kept for tracebacks."""
        for filename in self._filenames:
            linecache.cache.pop(filename, None)
        self._filenames.clear()


async def _execute(code: Any, evaluator: Evaluator) -> Any:
    result = eval(code, evaluator.namespace)
    if code.co_flags & inspect.CO_COROUTINE:
        result = await result
    return result


def show(value: Any) -> str:
    """How the console shows a value: its repr, pretty-printed when long."""
    return pprint.pformat(value, width=100, sort_dicts=False)
