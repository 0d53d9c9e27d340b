"""Secrets out of everything the runtime renders: the `Secret` type and the redaction registry.

Two walls, because one would not hold:

- **By type.** `Secret` is a ``str`` whose ``repr`` is ``Secret('<redacted>')``; its value is
  the real one (it is passed to HTTP headers, SDKs and subprocesses as any string). A state
  dict, a config struct or a crash report that holds a `Secret` shows it redacted wherever it
  is rendered with ``repr``/``pprint``.
- **By value.** A secret does not stay in objects we write: a bot token ends up inside the
  SDK's ``Bot`` (whose ``repr`` formats it with ``str``), an API key inside an HTTP client's
  headers. So every `Secret` also registers its value here (`register_secret` does it for a
  plain string), and `redact` replaces each registered value, and its JSON-escaped form, in
  text about to leave the process: the console's frames (so ``state(...)`` and
  ``piano status``), the daemon's log lines (crash reports included) and the dashboard.

The registry is process-wide and only grows (a rotated-out token is still a secret). Values
shorter than `MIN_LENGTH` are not registered: scrubbing a short, common string would mangle
unrelated text, and such a value is no secret anyway.
"""

from __future__ import annotations

import json
import threading

__all__ = ["MIN_LENGTH", "REDACTED", "Secret", "redact", "register_secret"]

REDACTED = "<redacted>"
MIN_LENGTH = 8

_lock = threading.Lock()
_forms: tuple[str, ...] = ()
"""Every registered value and its JSON-escaped form, longest first."""


class Secret(str):
    """A secret string: a real ``str`` whose ``repr`` never shows it (see the module)."""

    __slots__ = ()

    def __new__(cls, value: str) -> Secret:
        register_secret(value)
        return super().__new__(cls, value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"


def register_secret(value: str) -> None:
    """Scrub `value` from everything `redact` sees from now on (thread-safe)."""
    global _forms
    if len(value) < MIN_LENGTH:
        return
    forms = {str.__str__(value), json.dumps(str.__str__(value))[1:-1]}
    with _lock:
        _forms = tuple(sorted(set(_forms) | forms, key=len, reverse=True))


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ``<redacted>``."""
    for form in _forms:
        if form in text:
            text = text.replace(form, REDACTED)
    return text
