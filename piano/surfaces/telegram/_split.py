"""Answers as Telegram messages: Markdown rendered to Telegram HTML, split on safe boundaries.

Parse mode: **HTML**. Agents answer in Markdown, but Telegram's MarkdownV2 needs every one of 18
punctuation characters escaped outside entities and rejects the whole message on one mistake;
HTML needs only ``& < >`` escaped, so any text the agent writes renders. `render_html` turns the
Markdown that matters in a chat into HTML — fenced code blocks (``<pre><code>``), inline code,
bold, italics, links and headings — and escapes everything else.

`split_markdown` cuts an answer into `Chunk` s whose HTML fits one message (`limit`, counted in
UTF-16 code units as Telegram does, on the HTML itself, which is never shorter than the text
Telegram counts). Guarantees (property-tested):
- the chunks' `source` texts concatenated are exactly the input;
- a chunk breaks at a blank line if one is in the second half of the chunk, else at a line end,
  outside code blocks; only a code block longer than a whole message is cut, at a line end, and
  then each piece is closed and reopened (`Chunk.markdown` shows these markers) so every message
  is a well-formed code block;
- a line longer than a message is cut at a space outside inline code when there is one;
- every chunk renders to well-formed HTML (entities are rendered per chunk, never cut).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

__all__ = ["Chunk", "render_html", "split_markdown", "utf16_len"]

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)[^`]*$")
_INLINE = re.compile(
    r"(?P<code>(`+)(?P<code_text>.+?)\2)"
    r"|\*\*(?P<bold>[^*\n]+?)\*\*"
    r"|__(?P<bold2>[^_\n]+?)__"
    r"|(?<![\w*])\*(?P<italic>[^*\s][^*\n]*?)\*(?![\w*])"
    r"|(?<!\w)_(?P<italic2>[^_\s][^_\n]*?)_(?!\w)"
    r"|\[(?P<link_text>[^\]\n]+)\]\((?P<url>https?://[^)\s]+)\)"
)
_HEADING = re.compile(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def utf16_len(text: str) -> int:
    """Telegram's length of `text`: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _inline(line: str) -> str:
    out: list[str] = []
    at = 0
    for match in _INLINE.finditer(line):
        out.append(_escape(line[at : match.start()]))
        at = match.end()
        if match["code"] is not None:
            out.append(f"<code>{_escape(match['code_text'])}</code>")
        elif match["bold"] is not None or match["bold2"] is not None:
            out.append(f"<b>{_inline(match['bold'] or match['bold2'])}</b>")
        elif match["italic"] is not None or match["italic2"] is not None:
            out.append(f"<i>{_inline(match['italic'] or match['italic2'])}</i>")
        else:
            url = html.escape(match["url"], quote=True)
            out.append(f'<a href="{url}">{_escape(match["link_text"])}</a>')
    out.append(_escape(line[at:]))
    return "".join(out)


def _render_line(line: str) -> str:
    heading = _HEADING.match(line)
    if heading:
        return f"<b>{_inline(heading[1])}</b>"
    return _inline(line)


def _open_tag(info: str) -> str:
    language = re.sub(r"[^\w+#.-]", "", info)[:32]
    return f'<pre><code class="language-{language}">' if language else "<pre><code>"


_CLOSE_TAG = "</code></pre>"


@dataclass(frozen=True, slots=True)
class _Fence:
    line: str
    char: str
    length: int
    info: str


def _opens(line: str) -> _Fence | None:
    match = _FENCE.match(line)
    if match is None:
        return None
    marker = match[1]
    if marker[0] == "`" and "`" in line.strip()[len(marker) :]:
        return None
    return _Fence(line.strip(), marker[0], len(marker), match[2])


def _closes(line: str, fence: _Fence) -> bool:
    stripped = line.strip()
    return (
        len(line) - len(line.lstrip(" ")) <= 3
        and len(stripped) >= fence.length
        and set(stripped) == {fence.char}
    )


def render_html(markdown: str, fence: str | None = None) -> str:
    """Telegram HTML for `markdown`; `fence` is the opening line of a code block the text starts
    inside (a continued block). Open blocks are closed at the end, so the HTML is well formed."""
    out: list[str] = []
    current = _opens(fence) if fence is not None else None
    if current is not None:
        out.append(_open_tag(current.info))
    code: list[str] = []
    for line in markdown.split("\n"):
        if current is not None:
            if _closes(line, current):
                out.append(_escape("\n".join(code).rstrip("\n")) + _CLOSE_TAG)
                code = []
                current = None
            else:
                code.append(line)
            continue
        current = _opens(line)
        if current is not None:
            out.append(_open_tag(current.info))
            continue
        out.append(_render_line(line) + "\n")
    if current is not None:
        out.append(_escape("\n".join(code).rstrip("\n")) + _CLOSE_TAG)
    return "".join(out).strip()


@dataclass(frozen=True, slots=True)
class Chunk:
    """One message's worth of an answer: `source` is an exact slice of the input; `fence` is
    the opening line of a code block it continues, `closes` says a code block is cut at its
    end."""

    source: str
    fence: str | None = None
    closes: bool = False

    @property
    def markdown(self) -> str:
        """The chunk as standalone Markdown, with the reopened and closed fence markers."""
        head = f"{self.fence}\n" if self.fence is not None else ""
        tail = ""
        if self.closes:
            opened = _opens(self._opening())
            assert opened is not None
            tail = ("" if self.source.endswith("\n") else "\n") + opened.char * opened.length
        return head + self.source + tail

    def _opening(self) -> str:
        fence = self.fence
        for line in self.source.split("\n"):
            if fence is None:
                if _opens(line) is not None:
                    fence = line
            elif (opened := _opens(fence)) is not None and _closes(line, opened):
                fence = None
        assert fence is not None
        return fence

    @property
    def html(self) -> str:
        return render_html(self.source, self.fence)


@dataclass(slots=True)
class _Line:
    text: str
    cost: int
    inside: _Fence | None
    """The code block open after this line (None: outside any block)."""
    blank: bool


def _cost(text: str, inside: bool) -> int:
    body = text.rstrip("\n")
    escaped = utf16_len(_escape(body)) + 1
    return escaped if inside else max(escaped, utf16_len(_render_line(body)) + 1)


def _scan(text: str) -> list[_Line]:
    lines: list[_Line] = []
    current: _Fence | None = None
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\n")
        if current is not None:
            if _closes(body, current):
                current = None
                cost = utf16_len(_CLOSE_TAG) + 1
            else:
                cost = _cost(body, inside=True)
        elif (opened := _opens(body)) is not None:
            current = opened
            cost = utf16_len(_open_tag(opened.info)) + 1
        else:
            cost = _cost(body, inside=False)
        lines.append(_Line(raw, cost, current, not body.strip() and current is None))
    return lines


def _cut_long_line(line: str, budget: int, inside: bool) -> list[str]:
    """Cut one line into pieces costing at most `budget`, at a space outside inline code."""
    pieces: list[str] = []
    rest = line
    while _cost(rest, inside) > budget and len(rest) > 1:
        low, high = 1, len(rest) - 1
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            if _cost(rest[:middle], inside) <= budget:
                low = middle
            else:
                high = middle - 1
        cut = low
        for at in range(low, max(low // 2, 1) - 1, -1):
            if rest[at - 1] == " " and (inside or rest[:at].count("`") % 2 == 0):
                cut = at
                break
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    return pieces


def split_markdown(text: str, limit: int = 4096) -> list[Chunk]:
    """Cut `text` into chunks whose HTML fits `limit`; see the module documentation."""
    if limit < 128:
        raise ValueError("limit must be at least 128")
    reserve = utf16_len(_open_tag("x" * 32)) + utf16_len(_CLOSE_TAG) + 2
    lines: list[_Line] = []
    for line in _scan(text):
        if line.cost + reserve <= limit:
            lines.append(line)
            continue
        before = lines[-1].inside if lines else None
        inside = before is not None
        for piece in _cut_long_line(line.text, limit - reserve, inside):
            lines.append(_Line(piece, _cost(piece, inside), before, False))
        lines[-1].inside = line.inside

    chunks: list[Chunk] = []
    start = 0
    fence: _Fence | None = None
    while start < len(lines):
        cost = utf16_len(_open_tag(fence.info)) if fence is not None else 0
        end = start
        while end < len(lines):
            closing = utf16_len(_CLOSE_TAG) if lines[end].inside is not None else 0
            if end > start and (
                cost + lines[end].cost + closing > limit or not lines[end - 1].text.endswith("\n")
            ):
                break
            cost += lines[end].cost
            end += 1
        if end < len(lines) and lines[end - 1].text.endswith("\n"):
            end = _best_break(lines, start, end)
        last = lines[end - 1].inside
        chunks.append(
            Chunk(
                "".join(line.text for line in lines[start:end]),
                fence.line if fence is not None else None,
                last is not None and end < len(lines),
            )
        )
        fence = last
        start = end
    return chunks


def _best_break(lines: list[_Line], start: int, end: int) -> int:
    """Where to end the chunk lines[start:end] (exclusive): a blank line in its second half,
    else the last line end outside a code block, else `end` (a block too long to keep whole)."""
    half = start + (end - start) // 2
    for at in range(end, half, -1):
        if lines[at - 1].blank:
            return at
    for at in range(end, start, -1):
        if lines[at - 1].inside is None and lines[at - 1].text.endswith("\n"):
            return at
    return end
