"""Long answers are split on safe boundaries and rendered as Telegram HTML."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from piano.surfaces.telegram import render_html, split_markdown
from piano.surfaces.telegram._split import utf16_len

_PIECES = st.sampled_from(
    [
        "word ",
        "<tag> & ",
        "**bold** ",
        "`code` ",
        "_it_ ",
        "[link](https://example.org/a?b=1&c=2) ",
        "😀 ",
        "\n",
        "\n\n",
        "\n```python\n",
        "\n```\n",
        "\n~~~\n",
        "# Heading\n",
        "x" * 300,
        "long " * 80,
        "    indented line\n",
    ]
)
_TEXT = st.lists(_PIECES, max_size=120).map("".join)


class _Checker(HTMLParser):
    """Fails on tags Telegram does not accept or that are not properly nested."""

    ALLOWED = {"b", "i", "code", "pre", "a"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in self.ALLOWED, tag
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack, f"unopened </{tag}>"
        assert self.stack.pop() == tag, f"misnested </{tag}>"


def _well_formed(html: str) -> None:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    assert checker.stack == [], f"unclosed {checker.stack}"


@settings(max_examples=300, deadline=None)
@given(_TEXT, st.sampled_from([128, 200, 512, 4096]))
def test_split_parts_rebuild_the_answer_fit_a_message_and_never_break_a_code_block(
    text: str, limit: int
) -> None:
    chunks = split_markdown(text, limit)
    assert "".join(chunk.source for chunk in chunks) == text
    for chunk in chunks:
        html = chunk.html
        assert utf16_len(html) <= limit
        _well_formed(html)
        assert render_html(chunk.markdown) == html


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abc <&>\n", min_size=1, max_size=60), min_size=1, max_size=8))
def test_a_code_block_that_fits_a_message_is_never_cut(blocks: list[str]) -> None:
    text = "".join(f"Intro paragraph {i}.\n\n```\n{body}\n```\n\n" for i, body in enumerate(blocks))
    for chunk in split_markdown(text, 200):
        assert chunk.fence is None
        assert not chunk.closes
        assert chunk.html.count("<pre>") == chunk.html.count("</pre>")


def test_a_code_block_longer_than_a_message_is_closed_and_reopened_in_each_part() -> None:
    code = "\n".join(f"line {i} <x>" for i in range(200))
    chunks = split_markdown(f"Here:\n```python\n{code}\n```\nDone.", 512)
    assert len(chunks) > 3
    assert all(chunk.html.count("<pre>") == chunk.html.count("</pre>") for chunk in chunks)
    continued = [chunk for chunk in chunks if chunk.fence is not None]
    assert continued
    assert all(chunk.fence == "```python" for chunk in continued)
    assert all(chunk.markdown.startswith("```python\n") for chunk in continued)
    assert all('class="language-python"' in chunk.html for chunk in continued)
    assert chunks[-1].html.endswith("Done.")


def test_markdown_is_rendered_as_escaped_telegram_html() -> None:
    html = render_html("# Title\nUse **bold**, `a<b>` and [docs](https://x.org/?a=1&b=2) & <i>.")
    assert html == (
        "<b>Title</b>\nUse <b>bold</b>, <code>a&lt;b&gt;</code> and "
        '<a href="https://x.org/?a=1&amp;b=2">docs</a> &amp; &lt;i&gt;.'
    )
    assert render_html("```sh\necho <hi>\n```") == (
        '<pre><code class="language-sh">echo &lt;hi&gt;</code></pre>'
    )


def test_a_paragraph_boundary_is_preferred_over_a_line_boundary() -> None:
    first = "\n".join(["alpha " * 10] * 3)
    second = "\n".join(["beta " * 10] * 3)
    chunks = split_markdown(f"{first}\n\n{second}\n\n{first}", 300)
    assert chunks[0].source == f"{first}\n\n"
