"""`piano chat`: talk to an agent through the running daemon, from a terminal or a script.

In a terminal: a prompt_toolkit prompt (line editing, history in ``~/.piano_chat_history``,
Alt-Enter or a trailing ``\\`` for a new line of the same message), answers rendered as
markdown with rich, tool calls one line each, and a status line while a turn runs. Commands are
the client's own and never reach the model by accident (`piano.surfaces.terminal._ui`):
``/help``, ``y``/``n`` for the latest approval, ``/approve``/``/deny``/``/cancel`` with an
approval's short number, its id or nothing (the only pending one), ``/stop``, ``/say TEXT``,
``/resume`` (how to continue the thread elsewhere), ``/quit``. From a pipe the same commands
work and the output is plain text.
``--thread ID`` attaches to an existing thread, whichever surface opened it (an unknown id is
one error line and exit 1).
Scripted: ``piano chat --message "..."`` sends one message, prints the answer as it streams and
exits with 0 when the turn completed, 1 when it failed or was interrupted. Approvals requested
in scripted mode are printed and left to expire, unless ``--approve`` says to accept them.

When the daemon goes away (stopped, crashed), an interactive chat says so, reconnects as soon
as it is back (for up to `RECONNECT_FOR` seconds, else it exits with 1) and names the messages
the daemon had not yet accepted, to send again; a line typed meanwhile is sent once it is back.
A scripted chat says so and exits with 1.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TextIO

import msgspec

from actors import Backoff
from piano.commands import parse
from piano.surfaces.terminal._ui import (
    Approvals,
    Local,
    Quit,
    RichPrinter,
    ShowResume,
    Status,
    interpret,
    prompt_session,
)
from schemas import chat
from schemas import events as ev

__all__ = ["run_chat"]

_FRAME_LIMIT = 256 * 1024 * 1024
"""The longest frame read from the daemon: an event carries a final answer whole (codex's own
line limit is 64 MiB, and JSON escaping can grow it)."""
_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[chat.ServerFrame] = msgspec.json.Decoder(chat.ServerFrame)


class _Printer:
    """Renders a thread's events as plain text (a pipe, a script); a terminal gets
    `RichPrinter`."""

    def __init__(self, out: TextIO, approvals: Approvals | None = None) -> None:
        self.out = out
        self.approvals = approvals or Approvals()
        self.streamed: dict[str, str] = {}

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def show(self, event: ev.ThreadEvent) -> None:
        match event:
            case ev.ItemDelta(stream="text", item_id=item_id, delta=delta):
                self.streamed[item_id] = self.streamed.get(item_id, "") + delta
                self.write(delta)
            case ev.ItemStarted(item=ev.Item(kind="command", command=command)):
                self.write(f"\n$ {command}\n")
            case ev.ItemCompleted(item=item) if item.kind == "agent_message":
                streamed = self.streamed.pop(item.id, None)
                if streamed is None:
                    self.write(item.text)
                elif streamed != item.text:
                    self.write(f"\n{item.text}")
                self.write("\n")
            case ev.ItemCompleted(item=item) if item.kind == "command":
                self.write(f"[{_command_outcome(item)}]\n")
            case ev.ItemCompleted(item=item) if item.kind == "file_change":
                for change in item.changes:
                    self.write(f"[{change.kind} {change.path}{_unless_done(item)}]\n")
            case ev.ApprovalRequested(approval_id=approval_id, reason=reason):
                number = self.approvals.asked(event)
                self.write(
                    f"\n? approval {approval_id}: {_asked(event)}"
                    + (f" ({reason})" if reason else "")
                    + f"\n  [{number}] y / n · /approve {number} · /deny {number} · "
                    f"/cancel {number}\n"
                )
            case ev.ApprovalResolved(approval_id=approval_id, decision=decision):
                self.approvals.resolved(approval_id)
                self.write(f"[approval {approval_id}: {decision}]\n")
            case ev.Notice(message=message, level=level):
                self.write(f"\n! {message}\n" if level != "info" else f"· {message}\n")
            case ev.TurnCompleted(status=status, error=error) if status != "completed":
                self.write(f"\n[turn {status}{': ' + error if error else ''}]\n")


def _unless_done(item: ev.Item) -> str:
    return "" if item.status == "completed" else f" · {item.status}"


def _command_outcome(item: ev.Item) -> str:
    """How a command ended, in words: its exit code when it ran, else what stopped it."""
    if item.exit_code is not None:
        return f"exit {item.exit_code}{_unless_done(item) if item.status != 'failed' else ''}"
    stopped = {"declined": "declined", "interrupted": "interrupted", "failed": "did not run"}
    return f"{stopped.get(item.status, item.status)}: {item.command or 'the command'}"


def _asked(approval: ev.ApprovalRequested) -> str:
    """What an approval asks to do: the command, the tool call, or each file and its diff."""
    if approval.command:
        return approval.command
    if approval.tool:
        return f"tool {approval.tool} {approval.arguments or ''}".strip()
    if not approval.changes:
        return "a file change (codex did not say which files)"
    return "change files" + "".join(
        f"\n  {change.kind} {change.path}" + "".join(f"\n    {line}" for line in _diff(change))
        for change in approval.changes
    )


def _diff(change: ev.FileChange) -> list[str]:
    """The change as diff lines: codex gives an added or deleted file's whole text, and a
    unified diff for an update."""
    sign = {"add": "+", "delete": "-"}.get(change.kind)
    lines = change.diff.splitlines()
    return [sign + line for line in lines] if sign else lines


_UNREACHABLE = (FileNotFoundError, ConnectionRefusedError, PermissionError)
RECONNECT_FOR = 120.0
"""Seconds an interactive `piano chat` waits for a daemon that went away to come back."""


_RECONNECT_BACKOFF = Backoff(initial=0.1, cap=2.0)
"""How often `piano chat` tries the daemon's socket again while it restarts."""


async def _reconnect(
    path: str, within: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
    """Connect again as soon as the daemon's socket accepts, for up to `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    pauses = _RECONNECT_BACKOFF.streak()
    while True:
        try:
            return await asyncio.open_unix_connection(path, limit=_FRAME_LIMIT)
        except _UNREACHABLE:
            delay = pauses.failed()
            if loop.time() + delay > deadline:
                return None
            await asyncio.sleep(delay)  # back-off while the daemon restarts


async def _session(
    path: str,
    conversation: str,
    agent: str | None,
    message: str | None,
    approve: bool,
    out: TextIO,
    reconnect_for: float = RECONNECT_FOR,
    thread: str | None = None,
) -> int:
    try:
        reader, writer = await asyncio.open_unix_connection(path, limit=_FRAME_LIMIT)
    except _UNREACHABLE as exc:
        print(f"piano chat: cannot connect to {path}: {exc.strerror or exc}", file=sys.stderr)
        print(
            "Is the daemon running? Start it with: piano run --config <the same file>",
            file=sys.stderr,
        )
        return 1

    def send(frame: chat.ClientFrame) -> None:
        writer.write(_encoder.encode(frame) + b"\n")

    approvals = Approvals()
    status = Status()
    tty = message is None and sys.stdin.isatty() and out.isatty()
    printer: _Printer | RichPrinter = (
        RichPrinter(_console(out), approvals, status) if tty else _Printer(out, approvals)
    )
    pending: set[str] = set()
    unanswered: list[str] = []  # messages sent on this connection and not yet accepted
    outcome = 0
    done = asyncio.Event()
    resume: list[str] = []  # how to continue the thread elsewhere, from the welcome
    welcome = asyncio.Event()

    async def receive(reader: asyncio.StreamReader) -> None:
        """Show what the daemon sends until the connection ends (the daemon went away, or
        the connection broke: a reset, a frame over the limit)."""
        try:
            await frames(reader)
        except (ValueError, ConnectionError) as exc:
            printer.write(f"\n! the connection to the daemon broke: {exc}\n")

    async def frames(reader: asyncio.StreamReader) -> None:
        nonlocal outcome
        async for line in reader:
            frame = _decoder.decode(line)
            match frame:
                case chat.Welcome(thread_id=thread_id, agent=name, resume=lines):
                    approvals.clear()
                    resume[:] = lines
                    welcome.set()
                    if message is None:
                        printer.write(
                            f"Connected to thread {thread_id} ({name}). /help for commands, "
                            "/resume to continue it elsewhere, /quit to leave.\n"
                        )
                case chat.Accepted(interaction_id=interaction_id, outcome=state):
                    pending.add(interaction_id)
                    if unanswered:
                        unanswered.pop(0)
                    if state != "started":
                        printer.write(f"· {state}\n")
                case chat.CommandReply(text=text):
                    printer.write(f"{text}\n")
                    if message is not None:
                        done.set()  # a one-shot command: its reply is the whole answer
                case chat.ChatError(message=text):
                    printer.write(f"\n! {text}\n")
                    if message is not None and not pending:
                        outcome = 1  # the one message was refused before it was accepted
                        done.set()
                    elif thread is not None and not welcome.is_set():
                        outcome = 1  # the thread asked for is not known: nothing to attach
                        done.set()
                case chat.AlertFrame(alert=alert):
                    printer.write(f"\n{'!' if alert.state == 'opened' else '✓'} {alert.text}\n")
                case chat.EventFrame(event=event):
                    printer.show(event)
                    if approve and isinstance(event, ev.ApprovalRequested):
                        send(chat.Decide(event.approval_id, "accept"))
                    if isinstance(event, ev.TurnCompleted) and event.interaction_id in pending:
                        pending.discard(event.interaction_id)
                        outcome = 0 if event.status == "completed" else 1
                        if message is not None and not pending:
                            done.set()

    receiver = asyncio.create_task(receive(reader))
    send(chat.Hello(conversation=conversation, agent=agent, thread=thread))
    try:
        if thread is not None:  # attaching: no message before the daemon knows the thread
            waits = {asyncio.create_task(welcome.wait()), asyncio.create_task(done.wait())}
            await asyncio.wait({*waits, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            if not welcome.is_set():
                return 1
        if message is not None:
            if message.strip().lower() == "/status":  # the daemon's answer, as interactively
                send(chat.Status())
            else:
                send(chat.Command(message) if parse(message) is not None else chat.Say(message))
            finished = asyncio.create_task(done.wait())
            await asyncio.wait({finished, receiver}, return_when=asyncio.FIRST_COMPLETED)
            finished.cancel()
            if done.is_set():
                return outcome
            print(
                "piano chat: the daemon went away before the answer finished; once it is back, "
                "`piano chat` shows the conversation again",
                file=sys.stderr,
            )
            return 1
        read_line = await _line_reader(tty, status)
        typed: asyncio.Task[str] | None = None
        while True:
            typed = typed or asyncio.create_task(read_line())
            await asyncio.wait({typed, receiver}, return_when=asyncio.FIRST_COMPLETED)
            if receiver.done():  # the daemon went away; a line typed meanwhile waits
                lost = "".join(f"\n  {text}" for text in unanswered)
                printer.write(
                    "\n! the daemon went away; reconnecting when it is back (Ctrl-C to stop)\n"
                    + (f"! not received, send again:{lost}\n" if lost else "")
                )
                unanswered.clear()
                writer.close()
                connection = await _reconnect(path, reconnect_for)
                if connection is None:
                    printer.write(f"! the daemon did not come back within {reconnect_for:.0f} s\n")
                    return 1
                reader, writer = connection
                receiver = asyncio.create_task(receive(reader))
                send(chat.Hello(conversation=conversation, agent=agent, thread=thread))
                continue
            line = typed.result()
            typed = None
            if not line:
                return 0
            action = interpret(line, approvals)
            match action:
                case None:
                    continue
                case Quit():
                    return 0
                case Local(text=text):
                    printer.write(text + "\n")
                case ShowResume():
                    printer.write("".join(f"{line}\n" for line in resume) or "not connected\n")
                case chat.Say(text=text):
                    unanswered.append(text)
                    send(action)
                case _:
                    send(action)
    finally:
        receiver.cancel()
        writer.close()


def _console(out: TextIO) -> Any:
    import shutil

    from rich.console import Console

    # under patch_stdout `out` is a proxy rich cannot measure: ask the terminal itself
    return Console(file=out, force_terminal=True, width=shutil.get_terminal_size().columns)


async def _line_reader(tty: bool, status: Status) -> Callable[[], Coroutine[Any, Any, str]]:
    """Where typed entries come from: the prompt_toolkit prompt in a terminal (one entry may
    hold several lines), else stdin's lines. An empty string is the end of input."""
    if tty:
        session = prompt_session(status)

        async def prompt() -> str:
            try:
                entry: str = await session.prompt_async()
            except EOFError:
                return ""
            except KeyboardInterrupt:  # Ctrl-C stops a running turn, else leaves
                return "/stop" if status.doing is not None else "/quit"
            return entry or "\n"

        return prompt
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)

    async def readline() -> str:
        return (await stdin.readline()).decode()

    return readline


def run_chat(
    path: str,
    *,
    conversation: str = "default",
    agent: str | None = None,
    message: str | None = None,
    approve: bool = False,
    thread: str | None = None,
) -> int:
    """Run the chat client; returns the process exit code. `thread` attaches to an existing
    thread by its id (whichever surface opened it) instead of `conversation`."""
    tty = message is None and sys.stdin.isatty() and sys.stdout.isatty()
    try:
        if tty:  # output printed while the prompt is shown goes above it
            from prompt_toolkit.patch_stdout import patch_stdout

            with patch_stdout(raw=True):
                return asyncio.run(
                    _session(path, conversation, agent, message, approve, sys.stdout, thread=thread)
                )
        return asyncio.run(
            _session(path, conversation, agent, message, approve, sys.stdout, thread=thread)
        )
    except KeyboardInterrupt:
        return 130
