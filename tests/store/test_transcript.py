"""The Markdown transcript: everything a thread did, in order, and a layout no content breaks."""

from __future__ import annotations

import re

import pytest

from piano.store import StoreError, StoreReader, Writer
from schemas.events import (
    ApprovalRequested,
    ApprovalResolved,
    FileChange,
    Interaction,
    Item,
    TokenUsage,
)
from tests.store.conftest import T0, completed, item_completed, started

FENCE = re.compile(r"^(`{3,})([^`]*)$")  # a backtick fence's info string has no backtick


def outline(markdown: str) -> tuple[list[str], list[tuple[str, str]]]:
    """CommonMark's view of the top level: its headings, and its fenced blocks (info, body).

    Lines in a block quote (starting with ">") are inside the quote, where an unclosed fence ends
    with the quote; a fence closes on a line of at least as many backticks and nothing else.
    """
    headings: list[str] = []
    blocks: list[tuple[str, str]] = []
    fence: tuple[int, str, list[str]] | None = None
    for line in markdown.split("\n"):
        if fence is not None:
            width, info, body = fence
            closing = line.rstrip()
            if len(closing) >= width and set(closing) == {"`"}:
                blocks.append((info, "\n".join(body)))
                fence = None
            else:
                body.append(line)
            continue
        if line.startswith(">"):
            continue
        opening = FENCE.match(line)
        if opening is not None:
            fence = (len(opening.group(1)), opening.group(2), [])
        elif line.startswith("#"):
            headings.append(line)
    assert fence is None, f"a fence was left open: {fence}"
    return headings, blocks


def quoted(markdown: str) -> str:
    return "\n".join(line[2:] for line in markdown.split("\n") if line.startswith("> "))


def record_a_working_session(writer: Writer) -> None:
    diff = "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hi')\n+print('hello')\n"
    writer.set_codex_thread_id("t1", "codex-thread-7")
    writer.record_interaction(
        "t1", Interaction(id="i1", text="Fix the greeting", user="alice"), at=T0
    )
    writer.write_batch(
        [
            started("t1", "i1", "turn1", text="Fix the greeting", at=T0 + 1),
            item_completed(
                "t1",
                "turn1",
                Item(id="r", kind="reasoning", text="I should look\nat app.py first. " * 40),
            ),
            item_completed(
                "t1", "turn1", Item(id="p", kind="plan", text="1. read app.py\n2. edit it")
            ),
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="c",
                    kind="command",
                    command="cat app.py",
                    cwd="/work",
                    output="print('hi')\n",
                    exit_code=0,
                ),
            ),
            ApprovalRequested(
                thread_id="t1",
                turn_id="turn1",
                approval_id="a1",
                item_id="f",
                kind="file_change",
                reason="edit app.py",
                changes=[FileChange(path="app.py", kind="update", diff=diff)],
            ),
            ApprovalResolved(
                thread_id="t1", turn_id="turn1", approval_id="a1", decision="accept", by="alice"
            ),
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="f",
                    kind="file_change",
                    changes=[FileChange(path="app.py", kind="update", diff=diff)],
                ),
            ),
            item_completed(
                "t1",
                "turn1",
                Item(id="k", kind="tool_call", tool="webfetch", arguments='{"url": "http://a"}'),
            ),
            item_completed(
                "t1", "turn1", Item(id="m", kind="agent_message", text="Greeting fixed.")
            ),
            TokenUsage(thread_id="t1", turn_id="turn1", input_tokens=900, total_tokens=1000),
            completed("t1", "turn1", response="Greeting fixed."),
            started("t1", "i2", "turn2", text="Now deploy", at=T0 + 10),
            item_completed(
                "t1",
                "turn2",
                Item(id="d", kind="command", command="deploy", output="denied", exit_code=1),
            ),
            completed("t1", "turn2", response="", status="failed", error="deploy failed: 403"),
        ]
    )


def test_a_transcript_shows_the_thread_each_message_every_step_and_the_outcome(
    writer: Writer, reader: StoreReader
) -> None:
    record_a_working_session(writer)

    markdown = reader.export_transcript("t1")
    headings, blocks = outline(markdown)

    assert headings == [
        "# Thread `t1`",
        "## 1. `alice` — 2025-06-15 15:06:40 UTC",
        "### Steps",
        "### Approvals",
        "### Response",
        "## 2. `alice` — 2025-06-15 15:06:50 UTC",
        "### Steps",
        "### Response",
    ]
    for line in (
        "- Agent: `codex`",
        "- Surface: `telegram`, conversation `chat:t1`",
        "- Codex thread: `codex-thread-7`",
        "- Tokens: 1000 (input 900, cached 0, output 0, reasoning 0)",
        "**Command** in `/work` — exit code 0",
        "**Command** — exit code 1",
        "File `app.py` (update)",
        "**Tool call** `webfetch`",
        "**Approval** (file_change) — accept by `alice`",
        "**Status:** failed",
    ):
        assert line in markdown, line
    assert ("sh", "cat app.py") in blocks
    assert ("text", "print('hi')") in blocks
    assert (
        "diff",
        "--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-print('hi')\n+print('hello')",
    ) in blocks
    assert ("json", '{"url": "http://a"}') in blocks
    assert ("text", "deploy failed: 403") in blocks
    reasoning = next(line for line in markdown.splitlines() if line.startswith("*Reasoning:*"))
    assert reasoning.startswith("*Reasoning:* I should look at app.py first. I should")
    assert len(reasoning) < 350  # summarised
    assert "> 1. read app.py\n> 2. edit it" in markdown
    assert markdown.count("Greeting fixed.") == 1  # the final message is shown once
    assert "tokens 1000" in markdown.split("## 2.")[0]


NASTY = [
    "```\n## not a heading\n",
    "````python\nunclosed",
    "`` inline `` ticks ``` and ```` more",
    "> quoted\n# Thread `fake`\n\n```",
    "~~~\n<script>alert(1)</script>\n",
    "",
]


@pytest.mark.parametrize("nasty", NASTY)
def test_no_content_can_break_the_transcript_layout(
    writer: Writer, reader: StoreReader, nasty: str
) -> None:
    writer.write_batch(
        [
            started("t1", "i1", "turn1", text=nasty),
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="c",
                    kind="command",
                    command=nasty,
                    cwd=nasty,
                    output=nasty,
                    exit_code=2,
                ),
            ),
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="f",
                    kind="file_change",
                    changes=[FileChange(path=nasty, kind="add", diff=nasty)],
                ),
            ),
            item_completed(
                "t1",
                "turn1",
                Item(id="k", kind="tool_call", tool=nasty, arguments=nasty, output=nasty),
            ),
            item_completed("t1", "turn1", Item(id="m", kind="agent_message", text=nasty + "!")),
            item_completed("t1", "turn1", Item(id="o", kind="other", text=nasty)),
            completed("t1", "turn1", response=nasty, error=nasty, status="failed"),
        ]
    )

    headings, blocks = outline(reader.export_transcript("t1"))

    assert headings == [
        "# Thread `t1`",
        headings[1],
        "### Steps",
        "### Response",
    ]
    assert headings[1].startswith("## 1. `alice` — ")
    if nasty:
        assert [body for info, body in blocks if info == "sh"] == [nasty.rstrip("\n")]
        assert [body for info, body in blocks if info == "diff"] == [nasty.rstrip("\n")]
        assert sum(body == nasty.rstrip("\n") for _, body in blocks) == 6


def test_free_text_is_quoted_line_by_line_so_it_keeps_its_own_markdown(
    writer: Writer, reader: StoreReader
) -> None:
    text = "Here is a list:\n\n- one\n- two\n\n```py\nx = 1\n```"
    writer.write_batch([started("t1", "i1", "turn1", text=text), completed("t1", "turn1", text)])

    markdown = reader.export_transcript("t1")

    assert quoted(markdown).count("- one\n- two") == 2
    assert "> Here is a list:\n>\n> - one" in markdown


def test_exporting_an_unknown_thread_is_a_store_error(reader: StoreReader) -> None:
    with pytest.raises(StoreError, match="unknown thread 'nope'"):
        reader.export_transcript("nope")
