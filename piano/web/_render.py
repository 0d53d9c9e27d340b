"""Markdown to safe HTML for the web pages: markdown-it-py, Pygments, then the nh3 sanitiser.

The agent's text is untrusted (a prompt-injected agent writes what an attacker wants), so it is
rendered on the server and the browser only ever inserts what `render_markdown` returns:

- markdown-it-py parses CommonMark with tables and strikethrough; raw HTML in the text is
  *not* passed through (``html: False``): ``<script>`` shows as text;
- fenced code is highlighted by Pygments into ``<span class="...">`` (no inline styles; the
  colours come from `highlight_css`, light and dark);
- nh3 (Ammonia) then keeps only the tags and attributes listed here, links only to
  ``http``, ``https`` and ``mailto`` URLs, with ``rel="noopener noreferrer"``; no ``style``,
  no event handlers, no images (a remote image would be a tracking beacon; the page's CSP
  would refuse it anyway).

The output is a fragment; the pages add copy buttons to code blocks themselves.
"""

from __future__ import annotations

import functools
from typing import Final

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

__all__ = ["highlight_css", "render_markdown"]

_TAGS: Final = {
    "a", "b", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td",
    "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES: Final = {
    "a": {"href", "title"},
    "code": {"class"},
    "span": {"class"},
    "pre": {"class"},
    "ol": {"start"},
    "th": {"align"},
    "td": {"align"},
}
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    clean_content_tags={"script", "style"},
    attributes=_ATTRIBUTES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer",
)
_FORMATTER = HtmlFormatter(nowrap=True)
MAX_HIGHLIGHTED = 200_000
"""Code blocks longer than this are shown unhighlighted (Pygments is slow on megabytes)."""


def _highlight(code: str, language: str, attributes: str) -> str:
    if not language or len(code) > MAX_HIGHLIGHTED:
        return ""
    try:
        lexer = get_lexer_by_name(language.split()[0])
    except ClassNotFound:
        return ""
    return str(highlight(code, lexer, _FORMATTER))


@functools.cache
def _parser() -> MarkdownIt:
    options = {"html": False, "linkify": False, "typographer": False, "highlight": _highlight}
    return MarkdownIt("commonmark", options).enable(["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """`text` (Markdown) as a sanitised HTML fragment; see the module documentation."""
    return str(_CLEANER.clean(_parser().render(text)))


@functools.cache
def highlight_css() -> str:
    """The code highlighting colours: a light style, and a dark one for dark mode."""
    light = HtmlFormatter(style="friendly").get_style_defs(".md pre code")
    dark = HtmlFormatter(style="monokai").get_style_defs(".md pre code")
    return f"{light}\n@media (prefers-color-scheme: dark) {{\n{dark}\n}}\n"
