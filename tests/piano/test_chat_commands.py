"""What `piano chat` does with a typed entry: commands never reach the model by accident."""

from __future__ import annotations

from piano.surfaces.terminal._ui import HELP, Approvals, Local, Quit, interpret
from schemas import chat
from schemas import events as ev


def approval(approval_id: str, command: str = "ls") -> ev.ApprovalRequested:
    return ev.ApprovalRequested(
        thread_id="t", item_id="i", approval_id=approval_id, kind="command", command=command
    )


def test_help_is_answered_locally_with_every_command() -> None:
    assert interpret("/help", Approvals()) == Local(HELP)
    for command in ("/approve", "/deny", "/cancel", "/stop", "/say", "/quit", "y / n"):
        assert command in HELP


def test_y_and_n_answer_the_latest_pending_approval() -> None:
    approvals = Approvals()
    approvals.asked(approval("a"))
    approvals.asked(approval("b"))
    assert interpret("y", approvals) == chat.Decide("b", "accept")
    assert interpret("N", approvals) == chat.Decide("b", "decline")


def test_y_without_a_pending_approval_is_refused_not_sent() -> None:
    found = interpret("y", Approvals())
    assert isinstance(found, Local)
    assert "no approval is waiting" in found.text
    assert interpret("/say y", Approvals()) == chat.Say("y")


def test_approve_without_an_id_means_the_only_pending_one() -> None:
    approvals = Approvals()
    assert interpret("/approve", approvals) == Local("no approval is waiting")
    approvals.asked(approval("a"))
    assert interpret("/approve", approvals) == chat.Decide("a", "accept")
    approvals.asked(approval("b", "rm x"))
    several = interpret("/deny", approvals)
    assert isinstance(several, Local)
    assert "2 approvals are waiting" in several.text
    assert "[2] run: rm x" in several.text


def test_an_approval_is_named_by_its_short_number_and_numbers_are_never_reused() -> None:
    approvals = Approvals()
    first = approvals.asked(approval("a"))
    approvals.resolved("a")
    second = approvals.asked(approval("b"))
    assert (first, second) == (1, 2)
    assert interpret("/cancel 2", approvals) == chat.Decide("b", "cancel")
    assert interpret("/approve 1", approvals) == Local(
        "no pending approval [1]; waiting:\n  [2] run: ls"
    )
    assert interpret("/approve full-id", approvals) == chat.Decide("full-id", "accept")


def test_an_unknown_command_is_refused_and_plain_text_is_sent() -> None:
    unknown = interpret("/aprove", Approvals())
    assert isinstance(unknown, Local)
    assert "unknown command /aprove" in unknown.text
    assert interpret("hello\nthere", Approvals()) == chat.Say("hello\nthere")
    assert interpret("  ", Approvals()) is None
    assert interpret("/quit", Approvals()) == Quit()
    assert interpret("/stop", Approvals()) == chat.Interrupt()
