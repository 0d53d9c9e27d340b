"""What `piano chat` does with what the user types and how it shows a thread, in a terminal.

Two parts, both used by `_client._session`:

- `interpret`: one typed entry to what the client does — a frame for the daemon, a line
  answered locally, or quitting. Commands are handled here and never reach the model by
  accident: ``/help`` is answered locally; ``y``/``n`` answer the latest pending approval (and
  are refused, not sent, when none is pending); ``/approve``, ``/deny`` and ``/cancel`` take an
  approval's short number (shown beside it), its id, or nothing when exactly one is pending;
  the daemon's chat commands (`piano.commands`: ``/whoami``, ...) go to the daemon as a
  `chat.Command` frame; an unknown ``/command`` is refused with the list; ``/say TEXT`` sends
  TEXT verbatim (a message that starts with ``/`` or is just ``y``).
- `RichPrinter` (a terminal) and the plain printer in `_client` (a pipe, a script): the
  agent's answer rendered as markdown (rich), tool calls one compact line each, approvals with
  their number, and a status line while a turn runs (`Status`: thinking, running a command,
  editing files, waiting for approval, answering — with the elapsed time), which the
  prompt_toolkit prompt shows as its bottom toolbar.

`prompt_session` builds the prompt: line editing and history (``~/.piano_chat_history``,
``$PIANO_CHAT_HISTORY``), Enter sends, Alt-Enter (Esc then Enter) or a line ending in ``\\``
starts a new line of the same message.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from piano.commands import help_lines, parse
from schemas import chat
from schemas import events as ev

__all__ = [
    "HELP",
    "Approvals",
    "Local",
    "Quit",
    "RichPrinter",
    "Status",
    "interpret",
    "prompt_session",
]

HELP = """\
Type a message and press Enter to send it; Alt-Enter (or a line ending in \\) adds a line.
Up and Down recall earlier messages; Ctrl-R searches them.

  y / n               accept / decline the latest approval
  /approve [N|ID]     accept approval N (its number) or ID; alone: the only pending one
  /deny [N|ID]        decline it
  /cancel [N|ID]      decline it and end the turn
  /approvals          list the pending approvals
  /stop               interrupt the running turn (Ctrl-C too)
  /status             the thread: agent, model and effort, state, how to continue it
  /resume             how to continue this thread elsewhere (terminal, web, codex)
  /say TEXT           send TEXT as it is (to send "y" or a line starting with /)
  /help               this list
  /quit               leave (Ctrl-D, or Ctrl-C when no turn runs)

The daemon's commands, the same on every surface:
"""
HELP += "\n".join(f"  {line}" for line in help_lines())


@dataclass
class Approvals:
    """Pending approvals with the short numbers the user types (1, 2, ... for the session,
    never reused, so a number cannot come to mean another approval)."""

    pending: dict[int, ev.ApprovalRequested] = field(default_factory=dict)
    numbers: dict[str, int] = field(default_factory=dict)
    next_number: int = 1

    def asked(self, approval: ev.ApprovalRequested) -> int:
        number = self.numbers.get(approval.approval_id)
        if number is None:
            number = self.numbers[approval.approval_id] = self.next_number
            self.next_number += 1
        self.pending[number] = approval
        return number

    def resolved(self, approval_id: str) -> int | None:
        number = self.numbers.get(approval_id)
        if number is not None:
            self.pending.pop(number, None)
        return number

    def clear(self) -> None:
        """The connection is new: what was pending is shown again if it still is."""
        self.pending.clear()


@dataclass(frozen=True)
class Local:
    """A line answered by the client itself; nothing is sent."""

    text: str


@dataclass(frozen=True)
class Quit:
    """Leave the chat."""


@dataclass(frozen=True, slots=True)
class ShowResume:
    """Show how to continue this thread elsewhere (the daemon said so on welcome)."""


_DECISIONS: dict[str, Literal["accept", "decline", "cancel"]] = {
    "/approve": "accept",
    "/deny": "decline",
    "/cancel": "cancel",
}


def _listing(approvals: Approvals) -> str:
    return "\n".join(
        f"  [{number}] {_asked_line(approval)}" for number, approval in approvals.pending.items()
    )


def _choose(approvals: Approvals, argument: str, command: str) -> str | Local:
    """The approval id `argument` names (a number, an id, or nothing for the only one)."""
    if not argument:
        if not approvals.pending:
            return Local("no approval is waiting")
        if len(approvals.pending) > 1:
            return Local(
                f"{len(approvals.pending)} approvals are waiting; say which "
                f"({command} N):\n{_listing(approvals)}"
            )
        [only] = approvals.pending.values()
        return only.approval_id
    if argument.isdigit():
        approval = approvals.pending.get(int(argument))
        if approval is None:
            return Local(
                f"no pending approval [{argument}]"
                + (f"; waiting:\n{_listing(approvals)}" if approvals.pending else "")
            )
        return approval.approval_id
    return argument  # an id: the daemon says if it is unknown


def interpret(
    text: str, approvals: Approvals
) -> chat.ClientFrame | Local | Quit | ShowResume | None:
    """What one typed entry does (see the module documentation); None for an empty one."""
    stripped = text.strip()
    if not stripped:
        return None
    command, _, argument = stripped.partition(" ")
    argument = argument.strip()
    lowered = stripped.lower()
    if lowered in ("y", "yes", "n", "no"):
        if not approvals.pending:
            return Local(
                f'no approval is waiting (to send "{stripped}" to the agent: /say {stripped})'
            )
        latest = approvals.pending[max(approvals.pending)]
        return chat.Decide(latest.approval_id, "accept" if lowered[0] == "y" else "decline")
    if not command.startswith("/") or command.startswith("//"):
        return chat.Say(text.strip("\n"))
    match command:
        case "/help" | "/?":
            return Local(HELP)
        case "/quit" | "/exit":
            return Quit()
        case "/stop":
            return chat.Interrupt()
        case "/resume":
            return ShowResume()
        case "/status":
            return chat.Status()
        case "/say":
            return chat.Say(argument) if argument else Local("/say what? /say TEXT")
        case "/approvals":
            return Local(_listing(approvals) if approvals.pending else "no approval is waiting")
        case "/approve" | "/deny" | "/cancel":
            chosen = _choose(approvals, argument, command)
            if isinstance(chosen, Local):
                return chosen
            return chat.Decide(chosen, _DECISIONS[command])
    if parse(stripped) is not None:
        return chat.Command(stripped)
    return Local(f"unknown command {command}; /help lists them (to send it: /say {stripped})")


def _asked_line(approval: ev.ApprovalRequested) -> str:
    if approval.command:
        return f"run: {approval.command}"
    if approval.tool:
        return f"tool {approval.tool} {approval.arguments or ''}".strip()
    paths = ", ".join(change.path for change in approval.changes)
    return f"change files: {paths}" if paths else "change files"


class Status:
    """What the running turn is doing, for the status line."""

    def __init__(self) -> None:
        self.doing: str | None = None
        self.since = 0.0

    def line(self) -> str:
        if self.doing is None:
            return " ready · /help"
        return f" ● {self.doing} · {time.monotonic() - self.since:.0f}s · /stop interrupts"

    def update(self, event: ev.ThreadEvent, approvals: Approvals) -> None:
        match event:
            case ev.TurnStarted():
                self.doing, self.since = "thinking", time.monotonic()
            case ev.TurnCompleted():
                self.doing = None
            case _ if self.doing is None:
                return
            case ev.ApprovalRequested():
                self.doing = f"waiting for your approval ({len(approvals.pending)}): y / n"
            case ev.ItemStarted(item=item):
                self.doing = {
                    "command": f"running {_short(item.command or 'a command')}",
                    "file_change": "editing files",
                    "tool_call": f"calling {item.tool or 'a tool'}",
                    "web_search": "searching the web",
                    "reasoning": "thinking",
                }.get(item.kind, self.doing)
            case ev.ItemDelta(stream="text"):
                self.doing = "answering"
            case ev.ApprovalResolved() | ev.ItemCompleted():
                if approvals.pending:
                    self.doing = f"waiting for your approval ({len(approvals.pending)}): y / n"
                elif not self.doing.startswith("answering"):
                    self.doing = "thinking"


def _short(text: str, limit: int = 60) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


class RichPrinter:
    """Shows a thread's events in a terminal with rich: answers as markdown once complete
    (the status line says "answering" while it streams), tool calls one line each, approvals
    numbered with their diff, notices coloured by level."""

    def __init__(self, console: Console, approvals: Approvals, status: Status) -> None:
        self.console = console
        self.approvals = approvals
        self.status = status
        self.streamed: dict[str, str] = {}

    def write(self, text: str) -> None:
        self.console.print(Text(text.strip("\n")), highlight=False)

    def show(self, event: ev.ThreadEvent) -> None:
        self.status.update(event, self.approvals)
        print_ = self.console.print
        match event:
            case ev.ItemDelta(stream="text", item_id=item_id, delta=delta):
                text = self.streamed[item_id] = self.streamed.get(item_id, "") + delta
                so_far = text.strip().splitlines()
                if so_far and self.status.doing is not None:  # a preview of the last line
                    self.status.doing = f"answering: {_short(so_far[-1], 50)}"
            case ev.ItemCompleted(item=item) if item.kind == "agent_message":
                text = item.text or self.streamed.pop(item.id, "")
                self.streamed.pop(item.id, None)
                print_(Markdown(text))
            case ev.ItemStarted(item=ev.Item(kind="command", command=command)):
                print_(Text.assemble(("$ ", "bold cyan"), (_short(command or ""), "cyan")))
            case ev.ItemCompleted(item=item) if item.kind == "command":
                ok = item.status == "completed" and item.exit_code in (0, None)
                outcome = f"exit {item.exit_code}" if item.exit_code is not None else item.status
                lines = len(item.output.splitlines())
                print_(
                    Text(
                        f"  └ {outcome}"
                        + (f" · {lines} line{'s' if lines > 1 else ''} of output" if lines else ""),
                        style="dim" if ok else "red",
                    )
                )
            case ev.ItemCompleted(item=item) if item.kind == "file_change":
                for change in item.changes:
                    print_(Text(f"  ✎ {change.kind} {change.path}", style="yellow"))
            case ev.ItemCompleted(item=item) if item.kind == "tool_call":
                print_(Text(f"  ⚙ {item.tool or 'tool'} · {item.status}", style="dim"))
            case ev.ApprovalRequested(approval_id=approval_id, reason=reason):
                number = self.approvals.asked(event)
                print_(
                    Text.assemble(
                        (f"? [{number}] approval: ", "bold magenta"),
                        (_asked_line(event), "bold"),
                        (f" ({reason})" if reason else "", "italic"),
                    )
                )
                for change in event.changes:
                    for line in change.diff.splitlines()[:40]:
                        style = (
                            "green"
                            if line.startswith("+")
                            else "red"
                            if line.startswith("-")
                            else ""
                        )
                        print_(Text(f"    {line}", style=style), highlight=False)
                print_(
                    Text(
                        f"  y / n · /approve {number} · /deny {number} · /cancel {number}"
                        f"   (id {approval_id})",
                        style="dim",
                    )
                )
            case ev.ApprovalResolved(approval_id=approval_id, decision=decision):
                resolved = self.approvals.resolved(approval_id)
                print_(Text(f"  [{resolved or approval_id}] {decision}", style="dim"))
            case ev.Notice(message=message, level=level):
                style = {"error": "bold red", "warning": "yellow"}.get(level, "dim")
                print_(Text(f"! {message}" if level != "info" else f"· {message}", style=style))
            case ev.TurnCompleted(status=status, error=error) if status != "completed":
                print_(Text(f"[turn {status}{': ' + error if error else ''}]", style="red"))


def prompt_session(status: Status) -> Any:
    """The prompt_toolkit session of an interactive `piano chat` (see the module
    documentation)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings

    bindings = KeyBindings()

    @bindings.add("escape", "enter")
    def _newline(event: Any) -> None:
        event.current_buffer.insert_text("\n")

    @bindings.add("enter")
    def _send(event: Any) -> None:
        buffer = event.current_buffer
        if buffer.text.endswith("\\"):
            buffer.delete_before_cursor(1)
            buffer.insert_text("\n")
        else:
            buffer.validate_and_handle()

    history = os.environ.get("PIANO_CHAT_HISTORY") or os.path.expanduser("~/.piano_chat_history")
    return PromptSession(
        message="> ",
        multiline=True,  # Enter is bound above: it sends unless the line continues
        key_bindings=bindings,
        history=FileHistory(history),
        bottom_toolbar=status.line,
        refresh_interval=0.5,
        prompt_continuation="  ",
    )
