"""`Conversation`: what every conversation's actor does, whatever backend runs its turns.

A conversation (a chat, a topic) with an agent is one actor: Codex's `ConversationThread`
(piano.agents.codex) and the openai SDK's `OpenAIThread` (piano.agents.openai) are both
`Conversation`s, so surfaces, the pipeline and the store cannot tell them apart. They answer
the same calls, the frozen messages of `piano.agents._messages` (sent by the client functions
of `piano.threads`, never built by hand):

- `PostMessage` → an `Outcome`: "started" | "queued" | "steered" | "interrupting";
- `Interrupt` → whether a running turn is being interrupted;
- `Decide` → whether that approval was still open;
- `GetStatus` → a `ConversationStatus` (thread id, running, queued, open approvals, backend,
  model and effort);
- `ListModels` → the `ModelChoice`s the agent's provider offers (`ModelsUnavailable` if it
  cannot say now);
- `Configure` → the conversation's model and reasoning effort (``/model``, ``/effort``) saved
  and used from the next turn on;

and keep the same guarantees:

- **Turns.** A message while idle starts a turn. During a turn, the agent's ``busy`` setting
  decides: ``queue`` (the default) runs it after the current turn and tells the user so,
  ``steer`` adds it to the running turn (queued instead when the backend cannot), and
  ``interrupt`` interrupts the running turn and then runs it. A turn still running after
  `turn_timeout` is interrupted and the user told.
- **Approvals.** A request to run a command or apply a change becomes `ApprovalRequested`;
  ``decide`` answers it (accept, decline, cancel the turn). One not decided within
  `approval_timeout` is declined (``expired``), and one still open when its turn ends is
  ``withdrawn``, so a surface can remove its buttons.
- **Idle stop.** The thread's state is in the store, so the actor stops after `idle_timeout`
  without messages — never while a turn runs, a message waits or an approval is open — and
  comes back on the next message.
- **One actor per conversation.** The actor registers itself under its `ThreadKey` in the
  `conversations` registry (unique keys) while it lives; an actor started for a conversation
  that already has one ignores its start (`Ignore`), so a supervisor's restart and a new
  message never make two.
- **Accepted means saved.** A message is accepted once the directory has recorded it; one the
  store refuses (the disk is full) fails its call with `NotSaved` ("the disk is full; your
  message was not saved"), and the actor carries on.
- **Nothing accepted is lost.** It traps exits, so every stop (a shutdown, ``/new``, a crash)
  runs `terminate`, which closes a running turn as ``interrupted`` with the reason; queued
  messages stay pending in the store (except at ``/new``, which drops them, each ending
  ``interrupted`` with why). When it starts, before any message, it recovers what a previous
  actor left open (`ThreadDirectory.unfinished`, after the pipeline has stored everything
  published before): a turn left running — its process was killed — is closed as
  ``interrupted`` with the reason (`recovering`), and every pending message runs, oldest
  first, through the normal path, its user told with a notice. A turn that cannot start
  fails with the reason instead of crashing the actor (a pending message must not crash
  every restarted actor).
- **Daily limits before a turn.** Before a message starts a turn, the directory says whether
  its user reached a daily limit (``[limits]``); if so the message, already recorded, ends
  ``failed`` with a polite sentence saying when the limit resets, and never reaches the model.
- **Its model and effort survive restarts.** `Configure` records them in the directory before
  answering (`NotSaved` if the store refuses), and each actor reads them back before its first
  turn; a backend passes `model` and `settings.effort` with every turn it starts.
- **Events in order.** Events go to one outbox (`emit`) published in order under one lock
  (`flush`), at the latest when the current callback ends.

A backend implements the hooks: `_begin` (start a turn; it sets `turn`), `_steer`,
`_stop_turn`, `_models` (what ``/model`` lists), `_label` and `_status` (its
`ConversationStatus` fields: ``agent``, ``backend``, ``codex_thread_id``), and ends each turn
with `_end_turn`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from actors import (
    NOREPLY,
    NORMAL,
    Actor,
    Caller,
    Exit,
    Ignore,
    Registry,
    Timer,
    is_normal_exit,
)
from piano.agents._messages import (
    Configure,
    ConversationStatus,
    Decide,
    GetStatus,
    Interrupt,
    ListModels,
    ModelChoice,
    PostMessage,
)
from piano.store import ConversationSettings, StoreError
from schemas import events as ev

if TYPE_CHECKING:
    from piano.agents._directory import ThreadDirectory, ThreadKey
    from piano.config import AgentConfig

__all__ = [
    "DAEMON_STOPPED",
    "Conversation",
    "ModelsUnavailable",
    "NotSaved",
    "Publish",
    "Turn",
    "stopped_because",
]


class NotSaved(Exception):
    """The store refused to record a message (e.g. the disk is full): it was not accepted, and
    `PostMessage` call fails with this, a sentence for its user."""


class ModelsUnavailable(Exception):
    """The agent's provider cannot list its models now; the message says why, for its user."""


Publish = Callable[[list[ev.ThreadEvent]], Awaitable[None]]

DAEMON_STOPPED = "the daemon stopped"
"""Why a turn was interrupted when the daemon stopped (or was killed) while it ran."""

_ids = itertools.count(1)
_RESOLVED: dict[str, ev.ApprovalDecision] = {
    d: d for d in ("accept", "decline", "cancel", "expired", "withdrawn")
}


@dataclass(slots=True)
class Turn:
    """The running turn; a backend subclasses it with what it needs to run one."""

    interaction: ev.Interaction
    turn_id: str | None = None
    watchdog: Timer | None = None


@dataclass(slots=True)
class _Approval:
    answer: Callable[[str], None]
    timer: Timer
    item_id: str


T = TypeVar("T", bound=Turn)


def stopped_because(reason: object) -> str:
    """A conversation actor's exit reason as the user reads it in an interrupted turn."""
    if reason == NORMAL:
        return "the conversation was closed"
    if is_normal_exit(reason):
        return DAEMON_STOPPED
    return f"the conversation's actor crashed ({reason!r})"


class Conversation(Actor, Generic[T]):
    """One conversation's actor; see the module documentation."""

    def __init__(
        self,
        thread_id: str,
        key: ThreadKey,
        agent: AgentConfig,
        *,
        publish: Publish,
        directory: ThreadDirectory | None = None,
        conversations: Registry | None = None,
        recovering: str = DAEMON_STOPPED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.thread_id = thread_id
        self.conversations = conversations
        self.recovering = recovering
        self.key = key
        self.agent = agent
        self.publish = publish
        self.directory = directory
        self.clock = clock
        self.turn: T | None = None
        self.queue: deque[ev.Interaction] = deque()
        self.approvals: dict[str, _Approval] = {}
        self.idle_timer: Timer | None = None
        self.outbox: list[ev.ThreadEvent] = []
        self.publishing = asyncio.Lock()
        self.settings = ConversationSettings()

    # -- the backend's hooks --------------------------------------------------------------------

    async def _begin(self, interaction: ev.Interaction) -> None:
        """Start a turn for `interaction` (idle, nothing running): set `turn`, emit
        `TurnStarted`, `_watch` it; a turn that cannot start is ended with `_end_turn`."""
        raise NotImplementedError

    async def _steer(self, turn: T, interaction: ev.Interaction) -> bool:
        """Add `interaction` to the running `turn`; False to queue it instead."""
        return False

    async def _stop_turn(self, turn: T, why: str) -> bool:
        """Interrupt `turn` (telling the user `why`); False if it cannot be."""
        raise NotImplementedError

    async def _abandon(self, turn_id: str) -> None:
        """Stop `turn_id`, a turn a previous actor of this conversation left running, if the
        backend may still be running it, and ignore what it still reports."""

    async def _models(self) -> tuple[ModelChoice, ...]:
        """The models the agent's provider offers; `ModelsUnavailable` if it cannot say."""
        raise ModelsUnavailable(f"the {self.agent.backend} backend cannot list models")

    @property
    def model(self) -> str | None:
        """The model this conversation's turns use: its own choice, else the agent's."""
        return self.settings.model or self.agent.model

    def _label(self) -> str:
        """The agent, as `describe` shows it."""
        return self.key.agent

    def _status(self) -> dict[str, Any]:
        """The backend's fields of the `ConversationStatus` (``agent``, ``backend``,
        ``codex_thread_id``), where they differ from the conversation's key and config."""
        return {}

    # -- events ---------------------------------------------------------------------------------

    def emit(self, event: ev.ThreadEvent) -> None:
        """Queue an event; `flush` publishes the queue, in order (at the latest when the
        current callback ends)."""
        self.outbox.append(event)

    async def flush(self) -> None:
        async with self.publishing:
            while self.outbox:
                batch, self.outbox = self.outbox, []
                await self.publish(batch)

    def meta(self, interaction_id: str | None = None) -> dict[str, Any]:
        """The common fields of an event now: thread, turn, interaction, time."""
        return {
            "thread_id": self.thread_id,
            "turn_id": self.turn.turn_id if self.turn else None,
            "interaction_id": interaction_id or (self.turn.interaction.id if self.turn else None),
            "at": self.clock(),
        }

    def describe(self) -> str:
        state = "turn running" if self.turn else "idle"
        where = f"{self.key.surface}:{self.key.conversation} ({self._label()})"
        return f"{where}, {state}, {len(self.queue)} queued"

    async def init(self) -> None:
        self.trap_exits = True  # so every stop runs `terminate`, which closes the turn
        if self.conversations is not None:
            if self.conversations.lookup(self.key):
                raise Ignore  # this conversation's actor is alive: a second one must not run
            self.conversations.register(self.key, self.ref)
        self._arm_idle()
        if self.directory is not None:
            self.ref.send("recover")  # first in the mailbox: before any message is handled

    async def _recover(self) -> None:
        """Close the turns a previous actor left running and run the messages it accepted."""
        assert self.directory is not None
        self.settings = await self.directory.settings(self.key)
        left = await self.directory.unfinished(self.thread_id)
        for interaction, turn_id in left.running:
            if turn_id is not None:
                await self._abandon(turn_id)
            self.emit(
                ev.TurnCompleted(
                    status="interrupted",
                    error=self.recovering,
                    thread_id=self.thread_id,
                    turn_id=turn_id,
                    interaction_id=interaction.id,
                    at=self.clock(),
                )
            )
        if not left.pending:
            return
        self.queue.extend(left.pending)
        count = len(left.pending)
        self.emit(
            ev.Notice(
                level="info",
                message=(
                    f"Your message was not answered yet when {self.recovering}; answering it now."
                    if count == 1
                    else f"Your {count} messages were not answered yet when {self.recovering}; "
                    "answering them now, in order."
                ),
                **self.meta(left.pending[0].id),
            )
        )
        if self.turn is None:
            await self._start(self.queue.popleft())

    def _arm_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.idle_timer = self.send_after(self.agent.idle_timeout, "idle")

    # -- requests -------------------------------------------------------------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            return await self._handle_call(message, caller)
        except (NotSaved, ModelsUnavailable) as exc:
            caller.fail(exc)
            return NOREPLY
        finally:
            await self.flush()

    async def _handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case PostMessage(interaction=interaction):
                return await self._message(interaction)
            case Interrupt():
                return await self._interrupt("interrupted by the user")
            case Decide(approval_id=approval_id, decision=decision, by=by):
                return self._decide(approval_id, decision, by)
            case GetStatus():
                return self._status_now()
            case ListModels():
                return await self._models()
            case Configure(settings=settings):
                return await self._configure(settings)
        return await super().handle_call(message, caller)

    async def _configure(self, settings: ConversationSettings) -> ConversationStatus:
        if self.directory is not None:
            try:
                await self.directory.remember_settings(self.key, settings)
            except StoreError as exc:
                self.log.error("conversation.settings_not_saved", error=str(exc))
                raise NotSaved(f"{exc}; the choice was not saved") from exc
        self.settings = settings
        self.log.info("conversation.configured", model=settings.model, effort=settings.effort)
        return self._status_now()

    def _status_now(self) -> ConversationStatus:
        fields: dict[str, Any] = {
            "agent": self.key.agent,
            "backend": self.agent.backend,
            "model": self.model,
            "effort": self.settings.effort,
            "settings": self.settings,
            **self._status(),
        }
        return ConversationStatus(
            thread_id=self.thread_id,
            running=self.turn is not None,
            queued=len(self.queue),
            approvals=tuple(sorted(self.approvals)),
            **fields,
        )

    async def _message(self, interaction: ev.Interaction) -> ev.Outcome:
        self._arm_idle()
        if self.turn is not None and self.turn.interaction.id == interaction.id:
            return "started"  # delivered again (e.g. recovered from the store first): run once
        if any(queued.id == interaction.id for queued in self.queue):
            return "queued"
        if self.directory is not None:
            try:
                await self.directory.record_interaction(self.thread_id, interaction)
            except StoreError as exc:
                self.log.error("conversation.message_not_saved", error=str(exc))
                raise NotSaved(f"{exc}; your message was not saved") from exc
        if self.turn is None:
            await self._start(interaction)
            return "started"
        policy = self.agent.busy
        if policy == "steer" and await self._steer(self.turn, interaction):
            return "steered"
        self.queue.append(interaction)
        if policy == "interrupt":
            await self._interrupt("interrupted by a new message")
            return "interrupting"
        self.emit(
            ev.Notice(
                level="info",
                message="Your message is queued; it runs when the current turn completes.",
                **self.meta(interaction.id),
            )
        )
        return "queued"

    async def _interrupt(self, why: str) -> bool:
        return self.turn is not None and await self._stop_turn(self.turn, why)

    # -- approvals ------------------------------------------------------------------------------

    def _ask(self, item_id: str, answer: Callable[[str], None], **request: Any) -> str:
        """Open an approval for `item_id` and emit its `ApprovalRequested` (with `request`'s
        fields); `answer` gets "accept", "decline" or "cancel" once it is decided."""
        approval_id = f"{self.thread_id}:{next(_ids)}"
        timer = self.send_after(self.agent.approval_timeout, ("approval_expired", approval_id))
        self.approvals[approval_id] = _Approval(answer, timer, item_id)
        self.emit(
            ev.ApprovalRequested(
                approval_id=approval_id,
                item_id=item_id,
                expires_at=self.clock() + self.agent.approval_timeout,
                **request,
                **self.meta(),
            )
        )
        return approval_id

    def _decide(self, approval_id: str, decision: ev.ApprovalDecision, by: str | None) -> bool:
        pending = self.approvals.pop(approval_id, None)
        if pending is None:
            return False
        pending.timer.cancel()
        pending.answer({"accept": "accept", "cancel": "cancel"}.get(decision, "decline"))
        resolved = _RESOLVED.get(decision, "decline")
        self.emit(
            ev.ApprovalResolved(approval_id=approval_id, decision=resolved, by=by, **self.meta())
        )
        return True

    def end_approvals(self) -> None:
        """Withdraw every open approval (their turn is ending)."""
        for approval_id in list(self.approvals):
            self._decide(approval_id, "withdrawn", None)

    # -- timers and the turn's end --------------------------------------------------------------

    async def handle_info(self, message: Any) -> None:
        try:
            await self._handle_info(message)
        finally:
            await self.flush()

    async def _handle_info(self, message: Any) -> None:
        match message:
            case ("turn_timeout", turn_id):
                if self.turn is not None and self.turn.turn_id == turn_id:
                    limit = self.agent.turn_timeout
                    await self._interrupt(
                        f"The turn took longer than {limit:g} s and was interrupted."
                    )
            case ("approval_expired", approval_id):
                self._decide(approval_id, "expired", None)
            case "recover":
                await self._recover()
            case Exit(reason=reason) if not is_normal_exit(reason):
                self.stop(reason)  # a linked actor crashed (the parent's Exit stops us anyway)
            case Exit():
                pass
            case "idle":
                if self.turn is None and not self.queue and not self.approvals:
                    self.stop("normal")
                else:
                    self._arm_idle()
            case _:
                await super().handle_info(message)

    def _watch(self, turn: T) -> None:
        """Interrupt `turn` if it is still running after `turn_timeout`."""
        turn.watchdog = self.send_after(self.agent.turn_timeout, ("turn_timeout", turn.turn_id))

    async def _end_turn(self, closing: list[ev.ThreadEvent], *, start_next: bool = True) -> None:
        """The turn is over: withdraw its approvals, emit `closing` (its last events), go idle,
        and (`start_next`) start the next queued message."""
        self.end_approvals()
        if self.turn is not None and self.turn.watchdog is not None:
            self.turn.watchdog.cancel()
        for event in closing:
            self.emit(event)
        self.turn = None
        self._arm_idle()
        if start_next and self.queue:
            await self._start(self.queue.popleft())

    async def _refusal(self, interaction: ev.Interaction) -> str | None:
        """Why `interaction`'s user may not have a turn now (a daily limit), or None. A store
        that cannot say does not stop the turn: the limits are a budget, not a wall."""
        if self.directory is None:
            return None
        try:
            return await self.directory.refusal(interaction)
        except Exception as exc:
            self.log.warning("conversation.limit_unchecked", error=repr(exc))
            return None

    def _close_queue(self, reason: object) -> None:
        """At a deliberate stop (``/new`` starts the conversation afresh: reason "normal") the
        queued messages will not run, so each ends ``interrupted`` saying so rather than
        staying pending for good. At any other stop they stay pending for the next actor."""
        if reason != NORMAL:
            return
        while self.queue:
            interaction = self.queue.popleft()
            self.emit(
                ev.TurnCompleted(
                    status="interrupted",
                    error="the conversation was started afresh before this message ran",
                    **self.meta(interaction.id),
                )
            )

    async def _start(self, interaction: ev.Interaction) -> None:
        """`_begin` a turn; one that cannot start, whatever the reason, fails with the reason
        instead of crashing the actor — a crash would be recovered, and the message, still
        pending, would crash every restarted actor until the daemon gives up."""
        why = await self._refusal(interaction)
        if why is not None:
            self.log.info("conversation.limit_reached", interaction=interaction.id)
            refused = ev.TurnCompleted(status="failed", error=why, **self.meta(interaction.id))
            await self._end_turn([refused])
            return
        try:
            await self._begin(interaction)
        except Exception as exc:
            self.log.error("conversation.turn_not_started", error=repr(exc), exc_info=exc)
            failed = ev.TurnCompleted(
                status="failed",
                error=f"the turn could not start: {exc}",
                **self.meta(interaction.id),
            )
            await self._end_turn([failed])
