"""What the pages show of untrusted text and of the log: Markdown rendered and sanitised
(`piano.web._render`), and recent errors as one clean line per incident (`group_errors`)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from piano.web._dashboard import clean_line, group_errors
from piano.web._render import highlight_css, render_markdown
from schemas.stream import ErrorEntry

ATTACKS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "[click](javascript:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    '<iframe src="https://evil.example/"></iframe>',
    "<svg onload=alert(1)>",
    '<div style="background:url(https://evil.example/beacon)">x</div>',
    "![beacon](https://evil.example/pixel.png)",
    "```html\n<script>alert(1)</script>\n```",
    "`<b onmouseover=alert(1)>`",
]


def test_markdown_becomes_headings_lists_tables_links_and_highlighted_code() -> None:
    html = render_markdown(
        "# Plan\n\n- one\n- **two**\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "[docs](https://example.org/docs)\n\n```python\ndef f():\n    return 1\n```\n"
    )
    assert "<h1>Plan</h1>" in html
    assert "<li><strong>two</strong></li>" in html
    assert "<table>" in html
    assert "<td>1</td>" in html
    assert '<a href="https://example.org/docs" rel="noopener noreferrer">docs</a>' in html
    assert '<pre><code class="language-python"><span class="k">def</span>' in html


class Elements(HTMLParser):
    """Every element of a fragment with its attributes, as a browser would parse it."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


@pytest.mark.parametrize("attack", ATTACKS)
def test_no_script_handler_style_frame_or_remote_image_survives_rendering(attack: str) -> None:
    html = render_markdown(attack)
    for tag, attributes in Elements(html).found:
        assert tag not in ("script", "iframe", "svg", "img", "style", "object"), html
        assert not any(name.startswith("on") or name == "style" for name in attributes), html
        href = attributes.get("href")
        assert href is None or href.startswith(("http:", "https:", "mailto:")), html


def test_a_code_block_in_an_unknown_language_is_shown_escaped_not_dropped() -> None:
    html = render_markdown("```nosuchlanguage\n<b>x</b> & y\n```")
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in html


def test_the_highlighting_colours_come_in_a_light_and_a_dark_style() -> None:
    css = highlight_css()
    assert ".md pre code .k" in css
    assert "@media (prefers-color-scheme: dark)" in css


CRASH = (
    "codex app-server exited with code 137; stderr:\n2026-12-05T06:18:35Z ERROR codex_app_server:"
    " Project-local config, hooks, and exec policies are disabled\n    1. /work/.codex"
)


class CodexExited(Exception):
    pass


def entry(at: float, event: str, level: str = "error", **fields: object) -> ErrorEntry:
    return ErrorEntry(ts=at, level=level, event=event, line=clean_line(event, fields))


def test_a_killed_child_is_one_clean_line_not_its_crash_report_termination_and_restart() -> None:
    entries = [
        entry(
            100.0,
            "codex.stderr",
            pid=1,
            line="2026-12-05T06:36:11.754970Z ERROR codex_app_server: Project-local config",
        ),
        entry(100.01, "codex.stderr", pid=1, line="    1. /work/.codex"),
        entry(100.02, "codex.stderr", pid=1, line="To load project-local config, ..."),
        entry(103.0, "actor.crashed", actor="codex", actor_id=18, reason=CodexExited(CRASH)),
        entry(103.01, "supervisor.child_terminated", supervisor="<S>", child="codex", reason=CRASH),
        entry(
            103.5,
            "supervisor.child_restarted",
            "warning",
            child="piano/codex_supervisor/codex",
            reason=repr(CodexExited(CRASH)),
        ),
    ]
    grouped = group_errors(entries)
    assert [(e.count, e.line) for e in grouped] == [
        (3, "codex.stderr: Project-local config"),
        (1, "codex crashed: codex app-server exited with code 137"),
    ]
    assert grouped[1].first_ts == 103.0
    assert grouped[1].ts == 103.5


def test_repeated_crashes_of_one_child_are_counted_on_one_line_with_the_latest_time() -> None:
    entries = [
        entry(at, "actor.crashed", actor="codex", actor_id=int(at), reason=CodexExited(CRASH))
        for at in (10.0, 50.0, 90.0)
    ] + [entry(60.0, "web.stream.dropped", "warning", client=3, why="too slow")]
    grouped = group_errors(entries)
    assert [(e.count, e.line, e.ts, e.first_ts) for e in grouped] == [
        (1, "web.stream.dropped [3]: too slow", 60.0, 60.0),
        (3, "codex crashed: codex app-server exited with code 137", 90.0, 10.0),
    ]


def test_a_clean_line_is_short_and_names_the_subject() -> None:
    line = clean_line("jail.failed", {"thread": "t1", "error": "x" * 500})
    assert line.startswith("jail.failed [t1]: xxx")
    assert len(line) <= 160
