"""The browser actions a session answers, their results, and their errors.

Each action is a small frozen message sent to a `BrowserSession` with ``ref.call(action)``.
Selectors are CSS by default (``by="xpath"`` for XPath). Results are plain data, so they
cross the MCP boundary as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from piano.tools._errors import ToolError

__all__ = [
    "Back",
    "BrowserAction",
    "BrowserActionError",
    "BrowserCrashed",
    "By",
    "Click",
    "CurrentUrl",
    "ElementInfo",
    "Find",
    "PageInfo",
    "ReadText",
    "RunScript",
    "Screenshot",
    "Type",
    "Visit",
]

By = Literal["css", "xpath"]


class BrowserActionError(ToolError):
    """The action could not be done on this page (no such element, bad selector, a script
    error, a page that did not load in time...). The session is fine."""


class BrowserCrashed(ToolError):
    """The browser died during the action; the action is lost and a fresh browser (blank page,
    no cookies, no history) is being started for the session."""


class PageInfo(msgspec.Struct, frozen=True):
    """Where the browser is after an action."""

    url: str
    title: str


class ElementInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """One element `Find` matched: its tag, visible text (capped) and telling attributes."""

    index: int
    tag: str
    text: str = ""
    attributes: dict[str, str] = msgspec.field(default_factory=dict)
    displayed: bool = True


class BrowserAction:
    """Base of the messages a `BrowserSession` answers."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Visit(BrowserAction):
    """Load `url` (http or https only) and wait for it. Reply: `PageInfo`."""

    url: str


@dataclass(frozen=True, slots=True)
class Click(BrowserAction):
    """Click the first element matching `selector`. Reply: `PageInfo` after the click."""

    selector: str
    by: By = "css"


@dataclass(frozen=True, slots=True)
class Type(BrowserAction):
    """Type `text` into the first element matching `selector` (cleared first unless `clear` is
    False); `submit` presses Enter after it. Reply: `PageInfo`."""

    selector: str
    text: str
    submit: bool = False
    clear: bool = True
    by: By = "css"


@dataclass(frozen=True, slots=True)
class Find(BrowserAction):
    """Elements matching `selector`, at most `limit`. Reply: ``list[ElementInfo]``."""

    selector: str
    limit: int = 20
    by: By = "css"


@dataclass(frozen=True, slots=True)
class ReadText(BrowserAction):
    """The visible text of the first element matching `selector` (the whole page by default),
    capped at `BrowserConfig.text_limit` characters. Reply: str."""

    selector: str = "body"
    by: By = "css"


@dataclass(frozen=True, slots=True)
class Screenshot(BrowserAction):
    """A PNG of the viewport. Reply: bytes."""


@dataclass(frozen=True, slots=True)
class CurrentUrl(BrowserAction):
    """Reply: `PageInfo` of the current page."""


@dataclass(frozen=True, slots=True)
class RunScript(BrowserAction):
    """Run JavaScript in the page (``return`` a value to get it back; `args` are
    ``arguments[0..]``). Reply: the returned value, converted to JSON-able data."""

    script: str
    args: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True)
class Back(BrowserAction):
    """Go back one page in history. Reply: `PageInfo`."""
