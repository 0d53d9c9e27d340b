"""Turning fetched bytes into Markdown or text plus metadata, with trafilatura (CPU-bound: run
``extract_page`` in a worker thread). Never touches the network."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import trafilatura
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
    tree = trafilatura.load_html(html)
    if tree is None:
        text = html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html
        tree = trafilatura.load_html(f"<html><body><div>{text}</div></body></html>")
    if tree is None or not tree.text_content().strip():
        return ExtractedPage(PageOutcome.EMPTY)
    document = trafilatura.bare_extraction(
        tree,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_links=False,
        include_formatting=output_format is OutputFormat.MARKDOWN,
    )
    if isinstance(document, Document):
        text = (document.text or "").strip()
        if text:
            return _page(PageOutcome.OK, document, text)
    return _page(PageOutcome.UNEXTRACTABLE, trafilatura.extract_metadata(tree, default_url=url))
