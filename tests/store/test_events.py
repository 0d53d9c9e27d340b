"""Each thread event lands in the tables as documented, and in the journal in order."""

from __future__ import annotations

from piano.store import StoreReader, Writer
from schemas.events import (
    ApprovalRequested,
    ApprovalResolved,
    FileChange,
    Interaction,
    Item,
    Notice,
    TokenUsage,
)
from tests.store.conftest import (
    T0,
    completed,
    delta,
    item_completed,
    item_started,
    simple_turn,
    started,
    tool_approval,
)


def test_a_recorded_interaction_is_pending_until_its_turn_starts(
    writer: Writer, reader: StoreReader
) -> None:
    writer.record_interaction(
        "t1", Interaction(id="i1", text="hi", user="alice", attachments=["a.png"]), at=T0
    )
    pending = reader.interaction("i1")
    assert pending is not None
    assert (pending.status, pending.attachments, pending.started_at) == ("pending", ["a.png"], None)

    writer.write_batch([started("t1", "i1", "turn1", at=T0 + 1)])

    running = reader.interaction("i1")
    assert running is not None
    assert (running.status, running.turn_id, running.started_at) == ("in_progress", "turn1", T0 + 1)
    assert running.created_at == T0
    thread = reader.thread("t1")
    assert thread is not None
    assert thread.status == "running"


def test_a_turn_for_an_unrecorded_interaction_creates_it_in_progress(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch([started("t1", "i9", "turn9", text="new message")])

    interaction = reader.interaction("i9")
    assert interaction is not None
    assert (interaction.thread_id, interaction.text, interaction.user, interaction.status) == (
        "t1",
        "new message",
        "alice",
        "in_progress",
    )


def test_turn_completion_sets_the_interaction_status_response_and_error(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch(
        [
            *simple_turn("t1", "i1", "turn1", "all good"),
            started("t2", "i2", "turn2"),
            completed("t2", "turn2", response="", status="failed", error="model overloaded"),
        ]
    )

    ok, failed = reader.interaction("i1"), reader.interaction("i2")
    assert ok is not None
    assert failed is not None
    assert (ok.status, ok.response, ok.error) == ("completed", "all good", None)
    assert (failed.status, failed.error) == ("failed", "model overloaded")
    assert failed.finished_at is not None
    assert {t.status for t in reader.threads()} == {"idle"}


def test_items_are_upserted_with_every_field_of_their_kind(
    writer: Writer, reader: StoreReader
) -> None:
    diff = "--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-old\n+new\n"
    command = Item(id="c1", kind="command", command="pytest -q", cwd="/work")
    edit = Item(id="f1", kind="file_change", changes=[FileChange(path="x.py", kind="update")])
    tool = Item(id="k1", kind="tool_call", tool="webfetch", arguments='{"url": "http://x"}')
    writer.write_batch(
        [
            started("t1", "i1", "turn1"),
            item_started("t1", "turn1", command, interaction="i1"),
            item_started("t1", "turn1", edit),
            item_started("t1", "turn1", tool),
        ]
    )
    assert [i.status for i in reader.items("i1")] == ["in_progress"] * 3

    writer.write_batch(
        [
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="c1",
                    kind="command",
                    command="pytest -q",
                    cwd="/work",
                    output="1 passed\n",
                    exit_code=0,
                    status="completed",
                ),
            ),
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="f1",
                    kind="file_change",
                    status="completed",
                    changes=[FileChange(path="x.py", kind="update", diff=diff)],
                ),
            ),
            item_completed(
                "t1",
                "turn1",
                Item(
                    id="k1",
                    kind="tool_call",
                    tool="webfetch",
                    arguments='{"url": "http://x"}',
                    output="page text",
                    status="failed",
                ),
            ),
        ]
    )

    c, f, k = reader.items("i1")
    assert (c.kind, c.command, c.cwd, c.output, c.exit_code, c.status) == (
        "command",
        "pytest -q",
        "/work",
        "1 passed\n",
        0,
        "completed",
    )
    assert f.changes == [FileChange(path="x.py", kind="update", diff=diff)]
    assert (k.tool, k.arguments, k.output, k.status) == (
        "webfetch",
        '{"url": "http://x"}',
        "page text",
        "failed",
    )
    assert all(item.completed_at is not None and item.turn_id == "turn1" for item in (c, f, k))
    assert c.seq < f.seq < k.seq


def test_streamed_text_is_appended_and_the_final_text_replaces_it(
    writer: Writer, reader: StoreReader
) -> None:
    message = Item(id="m1", kind="agent_message")
    writer.write_batch([started("t1", "i1", "turn1"), item_started("t1", "turn1", message)])
    writer.write_batch([delta("t1", "turn1", "m1", "Hel"), delta("t1", "turn1", "m1", "lo wrld")])
    writer.write_batch([delta("t1", "turn1", "m1", "!")])
    (streaming,) = reader.items("i1")
    assert (streaming.text, streaming.status) == ("Hello wrld!", "in_progress")

    writer.write_batch(
        [
            delta("t1", "turn1", "m1", " (retried)"),
            item_completed("t1", "turn1", Item(id="m1", kind="agent_message", text="Hello world!")),
        ]
    )

    (final,) = reader.items("i1")
    assert (final.text, final.status) == ("Hello world!", "completed")


def test_output_and_reasoning_deltas_go_to_their_own_columns(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch(
        [
            started("t1", "i1", "turn1"),
            item_started("t1", "turn1", Item(id="c1", kind="command", command="make")),
            item_started("t1", "turn1", Item(id="r1", kind="reasoning")),
            delta("t1", "turn1", "c1", "building\n", stream="output"),
            delta("t1", "turn1", "r1", "Think", stream="reasoning"),
            delta("t1", "turn1", "c1", "done\n", stream="output"),
            delta("t1", "turn1", "r1", "ing.", stream="reasoning"),
        ]
    )

    command, reasoning = reader.items("i1")
    assert (command.output, command.text) == ("building\ndone\n", "")
    assert reasoning.text == "Thinking."


def test_a_delta_for_an_unknown_item_keeps_the_text_in_a_new_item(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch(
        [started("t1", "i1", "turn1"), delta("t1", "turn1", "ghost", "streamed anyway")]
    )

    (item,) = reader.items("i1")
    assert (item.id, item.kind, item.text, item.status) == (
        "ghost",
        "agent_message",
        "streamed anyway",
        "in_progress",
    )


def test_deltas_pending_at_the_end_of_a_batch_are_all_kept_beside_unknown_items(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch([started("t1", "i1", "turn1"), started("t2", "i2", "turn2")])
    writer.write_batch(
        [
            item_started("t1", "turn1", Item(id="known", kind="agent_message")),
            delta("t1", "turn1", "known", "kept "),
            delta("t2", "turn2", "ghost", "Think", stream="reasoning"),
            delta("t2", "turn2", "ghost", "ing, then "),  # same item, another stream
            delta("t1", "turn1", "known", "too"),
        ]
    )

    (known,) = reader.items("i1")
    (ghost,) = reader.items("i2")
    assert known.text == "kept too"
    assert (ghost.kind, ghost.text) == ("reasoning", "Thinking, then ")


def test_turn_completion_closes_the_items_of_the_turn_still_open(
    writer: Writer, reader: StoreReader
) -> None:
    writer.write_batch(
        [
            started("t1", "i1", "turn1"),
            item_started("t1", "turn1", Item(id="done", kind="command", command="true")),
            item_completed(
                "t1", "turn1", Item(id="done", kind="command", command="true", exit_code=0)
            ),
            item_started("t1", "turn1", Item(id="hung", kind="command", command="sleep 1d")),
            started("t2", "i2", "turn2"),
            item_started("t2", "turn2", Item(id="other", kind="reasoning")),
            completed("t1", "turn1", status="interrupted", response=""),
        ]
    )
    writer.write_batch(
        [
            item_started("t2", "turn2", Item(id="m", kind="agent_message")),
            completed("t2", "turn2", status="failed", response=""),
        ]
    )

    assert {i.id: i.status for i in reader.items("i1")} == {
        "done": "completed",
        "hung": "interrupted",
    }
    assert {i.id: i.status for i in reader.items("i2")} == {"other": "failed", "m": "failed"}
    assert all(i.completed_at is not None for i in reader.thread_items("t1"))


def test_approvals_are_recorded_with_their_decisions_and_withdrawn_when_the_turn_ends(
    writer: Writer, reader: StoreReader
) -> None:
    def request(approval: str, item: str) -> ApprovalRequested:
        return ApprovalRequested(
            thread_id="t1",
            turn_id="turn1",
            approval_id=approval,
            item_id=item,
            kind="command",
            command="rm -rf build",
            reason="needs write access",
            expires_at=T0 + 60,
            at=T0,
        )

    writer.write_batch([started("t1", "i1", "turn1"), request("a1", "c1"), request("a2", "c2")])
    assert [a.id for a in reader.pending_approvals()] == ["a1", "a2"]
    assert reader.pending_approvals("t2") == []

    writer.write_batch(
        [
            ApprovalResolved(
                thread_id="t1", turn_id="turn1", approval_id="a1", decision="accept", by="alice"
            ),
            ApprovalResolved(thread_id="t1", approval_id="never-requested", decision="decline"),
            completed("t1", "turn1"),
        ]
    )

    a1, a2 = reader.approvals("t1")
    assert (a1.decision, a1.decided_by, a1.command, a1.reason, a1.expires_at) == (
        "accept",
        "alice",
        "rm -rf build",
        "needs write access",
        T0 + 60,
    )
    assert (a1.interaction_id, a1.item_id) == ("i1", "c1")
    assert (a2.decision, a2.decided_by) == ("withdrawn", None)
    assert reader.pending_approvals() == []


def test_a_tool_call_approval_keeps_the_tool_and_its_arguments(
    writer: Writer, reader: StoreReader
) -> None:
    asked = tool_approval(turn_id="turn1", at=T0)
    writer.write_batch([started("t1", "i1", "turn1"), asked])

    [approval] = reader.approvals("t1")
    assert (approval.kind, approval.tool, approval.arguments, approval.item_id) == (
        "tool_call",
        asked.tool,
        asked.arguments,
        "call_1",
    )


def test_token_usage_is_summed_per_interaction_thread_and_overall(
    writer: Writer, reader: StoreReader
) -> None:
    def usage(thread: str, turn: str, n: int) -> TokenUsage:
        return TokenUsage(
            thread_id=thread,
            turn_id=turn,
            input_tokens=n,
            cached_input_tokens=n // 2,
            output_tokens=2 * n,
            reasoning_tokens=n // 4,
            total_tokens=3 * n,
        )

    writer.write_batch(
        [
            started("t1", "i1", "turn1"),
            usage("t1", "turn1", 100),
            usage("t1", "turn1", 40),
            started("t2", "i2", "turn2"),
            usage("t2", "turn2", 8),
        ]
    )

    i1 = reader.usage(interaction_id="i1")
    assert (i1.reports, i1.input_tokens, i1.cached_input_tokens, i1.output_tokens) == (
        2,
        140,
        70,
        280,
    )
    assert (i1.reasoning_tokens, i1.total_tokens) == (35, 420)
    assert reader.usage("t2").total_tokens == 24
    assert reader.usage().total_tokens == 444
    assert reader.usage("t1", interaction_id="i2").reports == 0


def test_every_event_is_journaled_in_order_with_a_per_thread_sequence_number(
    writer: Writer, reader: StoreReader
) -> None:
    notice = Notice(thread_id="t2", level="warning", message="retrying", retrying=True)
    batch = [*simple_turn("t1", "i1", "turn1", "answer"), notice, started("t2", "i2", "turn2")]

    seqs = writer.write_batch(batch)

    assert seqs == [1, 2, 3, 4, 5, 6, 1, 2]
    assert [entry.event for entry in reader.events_since("t1")] == batch[:6]
    assert [entry.seq for entry in reader.events_since("t1", 4)] == [5, 6]
    assert [entry.event for entry in reader.events_since("t2")] == [notice, batch[7]]
    assert [entry.seq for entry in reader.events_since("t1", 0, limit=2)] == [1, 2]
    assert reader.last_seq("t1") == 6
    assert reader.last_seq("nonesuch") == 0


def test_threads_are_found_by_surface_conversation_and_agent_skipping_archived_ones(
    writer: Writer, reader: StoreReader
) -> None:
    writer.set_codex_thread_id("t1", "codex-abc")
    assert reader.find_thread("telegram", "chat:t1", "codex") == reader.thread("t1")
    thread = reader.thread("t1")
    assert thread is not None
    assert thread.codex_thread_id == "codex-abc"

    writer.set_thread_status("t1", "archived")
    assert reader.find_thread("telegram", "chat:t1", "codex") is None
    writer.create_thread("t1b", "telegram", "chat:t1", "codex", at=T0 + 5)

    found = reader.find_thread("telegram", "chat:t1", "codex")
    assert found is not None
    assert found.id == "t1b"
    assert [t.id for t in reader.threads(status="archived")] == ["t1"]
