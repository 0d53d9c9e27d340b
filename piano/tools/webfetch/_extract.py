"""Turning fetched bytes into Markdown or text plus metadata, with trafilatura (CPU-bound: run
``extract_page`` in a worker thread). Never touches the network."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import lxml.html
import trafilatura
from lxml.etree import ParserError
from trafilatura.settings import Document

from ._config import OutputFormat


class PageOutcome(enum.Enum):
    """How extraction went."""

    OK = "ok"
    EMPTY = "empty"
    UNEXTRACTABLE = "unextractable"


@dataclass(frozen=True, slots=True)
class ExtractedPage:
    """Extracted content and the metadata trafilatura found."""

    outcome: PageOutcome
    content: str = ""
    title: str | None = None
    author: str | None = None
    date: str | None = None
    sitename: str | None = None
    description: str | None = None
    canonical_url: str | None = None


def _has_any_text(html: str | bytes) -> bool:
    try:
        root = lxml.html.document_fromstring(html)
    except (ParserError, ValueError):
        return False
    return bool(root.text_content().strip())


def _page(outcome: PageOutcome, document: Document, content: str = "") -> ExtractedPage:
    return ExtractedPage(
        outcome,
        content=content,
        title=document.title,
        author=document.author,
        date=document.date,
        sitename=document.sitename,
        description=document.description,
        canonical_url=document.url,
    )


def extract_page(html: str | bytes, url: str, output_format: OutputFormat) -> ExtractedPage:
    """Extract the main content of an HTML page and its metadata (blocking)."""
    if not html.strip():
        return ExtractedPage(PageOutcome.EMPTY)
    if not _has_any_text(html):
        return ExtractedPage(PageOutcome.EMPTY)
    document = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_links=False,
        include_formatting=output_format is OutputFormat.MARKDOWN,
    )
    if isinstance(document, Document) and (document.text or "").strip():
        return _page(PageOutcome.OK, document, document.text.strip())
    meta = trafilatura.extract_metadata(html, default_url=url)
    if meta is None:
        return ExtractedPage(PageOutcome.UNEXTRACTABLE)
    return _page(PageOutcome.UNEXTRACTABLE, meta)
