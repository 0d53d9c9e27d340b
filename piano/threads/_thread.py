"""`ConversationThread`: one actor per conversation (a chat, a topic) and agent.

It turns user messages into Codex turns and Codex's notifications into Piano's thread events
(`schemas.events`), which it hands to `publish` (the pipeline, in the daemon). Its state is in
the store, so it is stopped after `idle_timeout` without messages and comes back on the next.

- **Turns.** A message while idle starts a turn. During a turn, the agent's `busy` setting
  decides: ``queue`` (the default) runs it after the current turn, ``steer`` adds it to the
  running turn (`turn/steer`), ``interrupt`` interrupts the running turn and then runs it.
  A turn that has not completed after `turn_timeout` is interrupted (Codex otherwise waits
  forever for a provider it cannot reach) and the user is told.
- **Approvals.** Codex's request to run a command or apply a change becomes an
  `ApprovalRequested` event; `decide` answers it (accept, decline, cancel the turn). One not
  decided within `approval_timeout` is declined (`expired`), and one still open when its turn
  completes is `withdrawn`, so a surface can remove its buttons.
- **Codex restarts.** The thread monitors the Codex client. If it dies mid-turn, the turn is
  completed as ``interrupted`` with a notice saying why, and the next message resumes the Codex
  thread (`thread/resume`) on the new process.
"""

from __future__ import annotations

import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from actors import NOREPLY, Actor, Caller, Down, MonitorRef, Registry, Timer
from piano.codex._client import ApprovalAsked, CodexNotification, connection
from piano.codex._rpc import CodexError, CodexProcess
from piano.codex._translate import Translator
from piano.threads._directory import ThreadDirectory, ThreadKey
from schemas import events as ev
from schemas.codex import (
    CommandExecutionRequestApprovalParams,
    TextInput,
    ThreadResumeParams,
    ThreadStartParams,
    TurnInterruptParams,
    TurnStartParams,
    TurnSteerParams,
)

if TYPE_CHECKING:
    from piano.config import AgentConfig

__all__ = ["ConversationThread", "Decision"]

Decision = Literal["accept", "decline", "cancel"]
Publish = Callable[[list[ev.ThreadEvent]], Awaitable[None]]

_ids = itertools.count(1)


@dataclass(slots=True)
class _Turn:
    interaction: ev.Interaction
    turn_id: str | None = None
    watchdog: Timer | None = None
    interrupting: bool = False


@dataclass(slots=True)
class _Approval:
    caller: Caller
    timer: Timer
    item_id: str
    kind: str = "command"
    extra: dict[str, Any] = field(default_factory=dict)


def _workspace(agent: AgentConfig) -> str:
    path = Path(agent.workspace).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


class ConversationThread(Actor):
    """One conversation's actor; see the module documentation."""

    def __init__(
        self,
        thread_id: str,
        key: ThreadKey,
        agent: AgentConfig,
        *,
        publish: Publish,
        sessions: Registry,
        codex_thread_id: str | None = None,
        directory: ThreadDirectory | None = None,
        codex_config: Callable[[str], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.thread_id = thread_id
        self.key = key
        self.agent = agent
        self.publish = publish
        self.sessions = sessions
        self.codex_thread_id = codex_thread_id
        self.directory = directory
        self.codex_config = codex_config
        self.clock = clock
        self.translator = Translator(thread_id, clock)
        self.process: CodexProcess | None = None
        self.client: MonitorRef | None = None
        self.turn: _Turn | None = None
        self.queue: deque[ev.Interaction] = deque()
        self.approvals: dict[str, _Approval] = {}
        self.idle_timer: Timer | None = None
        self.outbox: list[ev.ThreadEvent] = []

    def describe(self) -> str:
        state = "turn running" if self.turn else "idle"
        where = f"{self.key.surface}:{self.key.conversation} ({self.key.agent})"
        return f"{where}, {state}, {len(self.queue)} queued"

    async def init(self) -> None:
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.idle_timer = self.send_after(self.agent.idle_timeout, "idle")

    def _emit(self, event: ev.ThreadEvent) -> None:
        """Queue an event; `_flush` publishes the queue, in order, when the callback ends."""
        self.outbox.append(event)

    async def _flush(self) -> None:
        while self.outbox:
            batch, self.outbox = self.outbox, []
            await self.publish(batch)

    def _meta(self, interaction_id: str | None = None) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "turn_id": self.turn.turn_id if self.turn else None,
            "interaction_id": interaction_id or (self.turn.interaction.id if self.turn else None),
            "at": self.clock(),
        }

    # -- requests ----------------------------------------------------------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            return await self._handle_call(message, caller)
        finally:
            await self._flush()

    async def _handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("message", ev.Interaction() as interaction):
                return await self._message(interaction)
            case "interrupt":
                return await self._interrupt("interrupted by the user")
            case ("decide", str(approval_id), decision, by):
                return self._decide(approval_id, decision, by)
            case "status":
                return {
                    "thread_id": self.thread_id,
                    "codex_thread_id": self.codex_thread_id,
                    "running": self.turn is not None,
                    "queued": len(self.queue),
                    "approvals": sorted(self.approvals),
                }
            case ApprovalAsked() as asked:
                self._ask_approval(asked, caller)
                return NOREPLY
        return await super().handle_call(message, caller)

    async def _message(self, interaction: ev.Interaction) -> str:
        self._arm_idle()
        if self.directory is not None:
            await self.directory.record_interaction(self.thread_id, interaction)
        if self.turn is None:
            await self._start_turn(interaction)
            return "started"
        policy = self.agent.busy
        if policy == "steer" and self.turn.turn_id is not None and self.process is not None:
            try:
                await self.process.call(
                    TurnSteerParams(
                        thread_id=self.codex_thread_id or "",
                        expected_turn_id=self.turn.turn_id,
                        input=[TextInput(text=interaction.text)],
                    )
                )
                return "steered"
            except CodexError as exc:
                self._emit(
                    ev.Notice(level="warning", message=f"could not steer: {exc}", **self._meta())
                )
        self.queue.append(interaction)
        if policy == "interrupt":
            await self._interrupt("interrupted by a new message")
            return "interrupting"
        self._emit(
            ev.Notice(
                level="info",
                message="Your message is queued; it runs when the current turn completes.",
                **self._meta(interaction.id),
            )
        )
        return "queued"

    async def _attach(self) -> CodexProcess:
        """The live Codex connection, with this thread started or resumed on it."""
        if self.process is not None and self.process.exit is None:
            return self.process
        client, process = await connection(self.system)
        if self.client is not None:
            self.demonitor(self.client)
        self.client = self.monitor(client)
        agent = self.agent
        workspace = _workspace(agent)
        common: dict[str, Any] = {
            "cwd": workspace,
            "model": agent.model,
            "model_provider": agent.provider,
            "approval_policy": agent.approval_policy,
            "sandbox": agent.sandbox,
            "developer_instructions": agent.instructions,
        }
        if self.codex_config is not None:
            common["config"] = self.codex_config(self.thread_id)
        if self.codex_thread_id is None:
            started = await process.call(ThreadStartParams(**common))
            self.codex_thread_id = started.thread.id
            if self.directory is not None:
                await self.directory.remember_codex_thread(self.thread_id, self.codex_thread_id)
        else:
            await process.call(
                ThreadResumeParams(thread_id=self.codex_thread_id, exclude_turns=True, **common)
            )
        for key in self.sessions.keys(self.ref):
            self.sessions.unregister(key, self.ref)
        self.sessions.register(self.codex_thread_id, self.ref)
        self.process = process
        return process

    async def _start_turn(self, interaction: ev.Interaction) -> None:
        self.turn = _Turn(interaction)
        self.translator.begin(interaction.id)
        self._emit(ev.TurnStarted(interaction=interaction, agent=self.key.agent, **self._meta()))
        try:
            process = await self._attach()
            started = await process.call(
                TurnStartParams(
                    thread_id=self.codex_thread_id or "", input=[TextInput(text=interaction.text)]
                )
            )
        except CodexError as exc:
            self._end_turn(self.translator.complete("failed", f"could not start the turn: {exc}"))
            return
        if self.turn is not None and self.turn.interaction is interaction:
            self.turn.turn_id = started.turn.id
            self.translator.turn_id = self.translator.turn_id or started.turn.id
            self.turn.watchdog = self.send_after(
                self.agent.turn_timeout, ("turn_timeout", started.turn.id)
            )

    async def _interrupt(self, why: str) -> bool:
        turn = self.turn
        if turn is None or turn.turn_id is None or self.process is None:
            return False
        turn.interrupting = True
        self._emit(ev.Notice(level="info", message=why, **self._meta()))
        try:
            await self.process.call(
                TurnInterruptParams(thread_id=self.codex_thread_id or "", turn_id=turn.turn_id)
            )
        except CodexError as exc:
            self._emit(
                ev.Notice(level="error", message=f"could not interrupt: {exc}", **self._meta())
            )
            return False
        return True

    # -- approvals ----------------------------------------------------------------------------

    def _ask_approval(self, asked: ApprovalAsked, caller: Caller) -> None:
        params = asked.params
        approval_id = f"{self.thread_id}:{next(_ids)}"
        timer = self.send_after(self.agent.approval_timeout, ("approval_expired", approval_id))
        is_command = isinstance(params, CommandExecutionRequestApprovalParams)
        item = self.translator.open.get(params.item_id)
        self.approvals[approval_id] = _Approval(caller, timer, params.item_id)
        self._emit(
            ev.ApprovalRequested(
                approval_id=approval_id,
                item_id=params.item_id,
                kind="command" if is_command else "file_change",
                command=params.command
                if isinstance(params, CommandExecutionRequestApprovalParams)
                else None,
                cwd=params.cwd
                if isinstance(params, CommandExecutionRequestApprovalParams)
                else None,
                reason=params.reason,
                changes=list(item.changes) if item is not None else [],
                expires_at=self.clock() + self.agent.approval_timeout,
                **self._meta(),
            )
        )

    def _decide(self, approval_id: str, decision: str, by: str | None) -> bool:
        pending = self.approvals.pop(approval_id, None)
        if pending is None:
            return False
        pending.timer.cancel()
        answer = {"accept": "accept", "cancel": "cancel"}.get(decision, "decline")
        pending.caller.reply(answer)
        resolved: ev.ApprovalDecision = (
            decision
            if decision in ("accept", "decline", "cancel", "expired", "withdrawn")
            else "decline"
        )  # type: ignore[assignment]
        self._emit(
            ev.ApprovalResolved(approval_id=approval_id, decision=resolved, by=by, **self._meta())
        )
        return True

    # -- what Codex tells us -----------------------------------------------------------------

    async def handle_info(self, message: Any) -> None:
        try:
            await self._handle_info(message)
        finally:
            await self._flush()

    async def _handle_info(self, message: Any) -> None:
        match message:
            case CodexNotification(method=method, params=params, received_at=received_at):
                events = self.translator.feed(method, params, received_at)
                if events and isinstance(events[-1], ev.TurnCompleted):
                    *rest, done = events
                    for event in rest:
                        self._emit(event)
                    self._end_turn([done])
                    await self._next()
                else:
                    for event in events:
                        self._emit(event)
            case ("turn_timeout", turn_id):
                if self.turn is not None and self.turn.turn_id == turn_id:
                    limit = self.agent.turn_timeout
                    await self._interrupt(
                        f"The turn took longer than {limit:g} s and was interrupted."
                    )
            case ("approval_expired", approval_id):
                self._decide(approval_id, "expired", None)
            case Down(monitor=monitor) if monitor is self.client:
                self.client = None
                self.process = None
                if self.turn is not None:
                    self._emit(
                        ev.Notice(
                            level="error",
                            message="The Codex process stopped; the running turn was interrupted.",
                            **self._meta(),
                        )
                    )
                    self._end_turn(
                        self.translator.complete("interrupted", "the codex process exited")
                    )
                    await self._next()
            case "idle":
                if self.turn is None and not self.queue and not self.approvals:
                    self.stop("normal")
                else:
                    self._arm_idle()
            case _:
                await super().handle_info(message)

    def _end_turn(self, closing: list[ev.ThreadEvent]) -> None:
        for approval_id in list(self.approvals):
            self._decide(approval_id, "withdrawn", None)
        if self.turn is not None and self.turn.watchdog is not None:
            self.turn.watchdog.cancel()
        for event in closing:
            self._emit(event)
        self.turn = None
        self._arm_idle()

    async def _next(self) -> None:
        if self.turn is None and self.queue:
            await self._start_turn(self.queue.popleft())

    async def terminate(self, reason: object) -> None:
        if self.turn is not None:
            self._end_turn(
                self.translator.complete("interrupted", f"the thread stopped: {reason!r}")
            )
