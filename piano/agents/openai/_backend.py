"""`OpenAIThread`: a conversation's actor when its agent runs on the openai SDK.

From the outside it is a `ConversationThread` (piano.threads): the same calls —
``("message", Interaction)`` → "started" | "queued" | "steered" | "interrupting",
``"interrupt"`` → bool, ``("decide", approval_id, decision, by)`` → bool, ``"status"`` →
dict — the same thread events through the same `publish`, the same busy policy, turn
timeout, approval timeout and idle stop. Surfaces and the store cannot tell them apart.

- **Turns.** A message while idle starts a turn, run as a task of the actor (`_turn`), so
  the actor keeps answering while the model streams. During a turn the agent's ``busy``
  setting decides: ``queue`` runs the message after the turn; ``steer`` adds it to the
  running turn before its next model round (or runs it next if the turn ends first);
  ``interrupt`` interrupts the turn, then runs it. A turn still running after
  `turn_timeout` is interrupted and the user told.
- **Approvals.** A shell command that needs approval (see `_tools`) becomes
  `ApprovalRequested`; ``decide`` answers it: accept runs it, decline tells the model the
  user refused, cancel ends the turn. Undecided after `approval_timeout`: ``expired``
  (declined); still open when the turn ends: ``withdrawn``.
- **History.** The conversation (`_history`) is loaded on the first turn and stored after
  each, with the thread's active agent, so an idle-stopped thread resumes it.
- **Events in order.** The actor and its turn task put events in one outbox published under
  one lock, so the pipeline receives them in the order they happened.

`OpenAIBackend` holds what all OpenAI threads share (agent settings, tools, notes, history)
and makes their actors with `thread_actor`, whose arguments are `ConversationThread`'s.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
import structlog

from actors import Actor, Caller, Exit, Registry, Timer, is_normal_exit
from piano.agents._options import OpenAIAgentConfig
from piano.agents.openai._config import EndpointError, resolve_endpoint
from piano.agents.openai._history import History, MemoryHistory, Message
from piano.agents.openai._notes import Notes, owner_of
from piano.agents.openai._tools import SHELL_CWD, ToolContext, ToolRunner
from piano.agents.openai._turn import Profile, TurnRun
from piano.tools import Toolbox, ToolsConfig
from schemas import events as ev

if TYPE_CHECKING:
    from piano.config import AgentConfig, ProviderConfig
    from piano.threads import ThreadDirectory, ThreadKey

__all__ = ["OpenAIBackend", "OpenAIThread"]

log = structlog.get_logger(__name__)

Publish = Callable[[list[ev.ThreadEvent]], Awaitable[None]]
_ids = itertools.count(1)


class OpenAIBackend:
    """What the OpenAI thread actors share; see the module documentation.

    `agents` are the configuration's agents and `options` the ``openai`` options of those
    whose backend is "openai" (handoff targets must be among them). `tools` is the tools'
    configuration (each thread then uses a `Toolbox` on its actor system) or a ready
    `ToolRunner`; without it the agents have no web, browser or shell tools. `notes` and
    `history` default to memory; the daemon passes `SqliteNotes` / `SqliteHistory` on the
    store's database.
    """

    def __init__(
        self,
        agents: Mapping[str, AgentConfig],
        options: Mapping[str, OpenAIAgentConfig],
        *,
        providers: Mapping[str, ProviderConfig] | None = None,
        tools: ToolsConfig | ToolRunner | None = None,
        notes: Notes | None = None,
        history: History | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.agents = agents
        self.options = options
        self.providers = providers or {}
        self.tools = tools
        self.notes = notes
        self.history: History = history if history is not None else MemoryHistory()
        self.environ = environ

    def problems(self) -> list[str]:
        """Configuration errors (handoff targets, tool names, limits); empty when usable."""
        names = set(self.options)
        return [p for name, o in self.options.items() for p in o.problems(name, names)]

    def profile(self, name: str) -> Profile:
        """Agent `name` as a turn uses it; `EndpointError` if it is not an OpenAI agent."""
        agent = self.agents.get(name)
        options = self.options.get(name)
        if agent is None or options is None:
            raise EndpointError(f"no agent {name!r} with backend = 'openai' is configured")
        if not agent.model:
            raise EndpointError(f"agents.{name}.model is not set: an OpenAI agent needs a model")
        provider = self.providers.get(agent.provider) if agent.provider else None
        environ = self.environ

        def endpoint() -> Any:
            return resolve_endpoint(options, provider, environ)

        return Profile(
            name=name,
            model=agent.model,
            instructions=agent.instructions,
            approval_policy=agent.approval_policy,
            options=options,
            endpoint=endpoint,
        )

    def thread_actor(
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
    ) -> OpenAIThread:
        """The thread actor of a conversation (arguments as `ConversationThread`'s; the
        Codex-only ones, `sessions`, `codex_thread_id` and `codex_config`, are unused)."""
        return OpenAIThread(
            thread_id, key, agent, backend=self, publish=publish, directory=directory, clock=clock
        )


@dataclass(slots=True)
class _Turn:
    interaction: ev.Interaction
    turn_id: str
    task: asyncio.Task[None] | None = None
    watchdog: Timer | None = None
    steered: list[ev.Interaction] = field(default_factory=list)
    why: str = "interrupted by the user"
    finished: bool = False


@dataclass(slots=True)
class _Approval:
    answer: asyncio.Future[str]
    timer: Timer
    item_id: str


class OpenAIThread(Actor):
    """One conversation with an OpenAI agent; see the module documentation."""

    def __init__(
        self,
        thread_id: str,
        key: ThreadKey,
        agent: AgentConfig,
        *,
        backend: OpenAIBackend,
        publish: Publish,
        directory: ThreadDirectory | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.thread_id = thread_id
        self.key = key
        self.agent = agent
        self.backend = backend
        self.publish = publish
        self.directory = directory
        self.clock = clock
        self.active = key.agent
        self.history: list[Message] | None = None
        self.turn: _Turn | None = None
        self.queue: deque[ev.Interaction] = deque()
        self.approvals: dict[str, _Approval] = {}
        self.idle_timer: Timer | None = None
        self.outbox: list[ev.ThreadEvent] = []
        self.publishing = asyncio.Lock()
        self.clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self.runner: ToolRunner | None = None

    def describe(self) -> str:
        state = "turn running" if self.turn else "idle"
        where = f"{self.key.surface}:{self.key.conversation} ({self.active}, openai)"
        return f"{where}, {state}, {len(self.queue)} queued"

    async def init(self) -> None:
        self.trap_exits = True  # so a shutdown runs `terminate`: the turn ends, clients close
        tools = self.backend.tools
        if isinstance(tools, ToolsConfig):
            self.runner = Toolbox(self.system, tools)
        else:
            self.runner = tools
        self._arm_idle()

    def _arm_idle(self) -> None:
        if self.idle_timer is not None:
            self.idle_timer.cancel()
        self.idle_timer = self.send_after(self.agent.idle_timeout, "idle")

    # -- what the turn uses (TurnHost) ----------------------------------------------------------

    def emit(self, event: ev.ThreadEvent) -> None:
        self.outbox.append(event)

    async def flush(self) -> None:
        async with self.publishing:
            while self.outbox:
                batch, self.outbox = self.outbox, []
                await self.publish(batch)

    def meta(self, interaction_id: str | None = None) -> dict[str, Any]:
        return {
            "thread_id": self.thread_id,
            "turn_id": self.turn.turn_id if self.turn else None,
            "interaction_id": interaction_id or (self.turn.interaction.id if self.turn else None),
            "at": self.clock(),
        }

    def profile(self, agent: str) -> Profile:
        return self.backend.profile(agent)

    def client(self, profile: Profile) -> openai.AsyncOpenAI:
        endpoint = profile.endpoint()
        cache = (endpoint.base_url, endpoint.api_key)
        client = self.clients.get(cache)
        if client is None:
            client = openai.AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                max_retries=0,
                timeout=profile.options.request_timeout,
            )
            self.clients[cache] = client
        return client

    def take_steered(self) -> list[ev.Interaction]:
        if self.turn is None:
            return []
        steered, self.turn.steered = self.turn.steered, []
        return steered

    async def ask_approval(self, item: ev.Item, reason: str | None) -> str:
        approval_id = f"{self.thread_id}:{next(_ids)}"
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        timer = self.send_after(self.agent.approval_timeout, ("approval_expired", approval_id))
        self.approvals[approval_id] = _Approval(answer, timer, item.id)
        self.emit(
            ev.ApprovalRequested(
                approval_id=approval_id,
                item_id=item.id,
                kind="command",
                command=item.command,
                cwd=SHELL_CWD,
                reason=reason,
                expires_at=self.clock() + self.agent.approval_timeout,
                **self.meta(),
            )
        )
        await self.flush()
        return await answer

    def end_approvals(self) -> None:
        for approval_id in list(self.approvals):
            self._decide(approval_id, "withdrawn", None)

    # -- requests -------------------------------------------------------------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            return await self._handle_call(message, caller)
        finally:
            await self.flush()

    async def _handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case ("message", ev.Interaction() as interaction):
                return await self._message(interaction)
            case "interrupt":
                return self._interrupt("interrupted by the user")
            case ("decide", str(approval_id), decision, by):
                return self._decide(approval_id, decision, by)
            case "status":
                return {
                    "thread_id": self.thread_id,
                    "codex_thread_id": None,
                    "backend": "openai",
                    "agent": self.active,
                    "running": self.turn is not None,
                    "queued": len(self.queue),
                    "approvals": sorted(self.approvals),
                }
        return await super().handle_call(message, caller)

    async def _message(self, interaction: ev.Interaction) -> str:
        self._arm_idle()
        if self.directory is not None:
            await self.directory.record_interaction(self.thread_id, interaction)
        if self.turn is None:
            await self._start_turn(interaction)
            return "started"
        policy = self.agent.busy
        if policy == "steer":
            self.turn.steered.append(interaction)
            return "steered"
        self.queue.append(interaction)
        if policy == "interrupt":
            self._interrupt("interrupted by a new message")
            return "interrupting"
        self.emit(
            ev.Notice(
                level="info",
                message="Your message is queued; it runs when the current turn completes.",
                **self.meta(interaction.id),
            )
        )
        return "queued"

    async def _start_turn(self, interaction: ev.Interaction) -> None:
        if self.history is None:
            try:
                active, self.history = await self.backend.history.load(self.thread_id)
            except Exception as exc:
                log.exception("openai.history_unreadable", thread=self.thread_id)
                self.emit(
                    ev.Notice(
                        level="error",
                        message=f"The conversation's history could not be read: {exc}",
                        **self.meta(interaction.id),
                    )
                )
                active, self.history = None, []
            self.active = active or self.active
        turn = _Turn(interaction, f"turn-{uuid.uuid4().hex[:12]}")
        self.turn = turn
        self.emit(ev.TurnStarted(interaction=interaction, agent=self.active, **self.meta()))
        owner = owner_of(self.key.surface, interaction.user, self.key.conversation)
        run = TurnRun(
            host=self,
            interaction=interaction,
            agent=self.active,
            history=list(self.history),
            tools=ToolContext(self.thread_id, owner, self.runner, self.backend.notes, self._post),
            history_limit=self._history_limit,
            interrupted_because=lambda: turn.why,
        )
        turn.task = asyncio.get_running_loop().create_task(
            self._drive(turn, run), name=f"openai-turn-{self.thread_id}"
        )
        turn.watchdog = self.send_after(self.agent.turn_timeout, ("turn_timeout", turn.turn_id))

    def _history_limit(self, agent: str) -> int:
        options = self.backend.options.get(agent)
        return options.history_limit if options is not None else 200

    async def _post(self, text: str) -> None:
        self.emit(ev.Notice(level="info", message=text, **self.meta()))
        await self.flush()

    async def _drive(self, turn: _Turn, run: TurnRun) -> None:
        """The turn's task: run it, keep its messages, tell the actor it is over."""
        result = await run.run()
        turn.finished = True
        if self.history is not None:
            self.history.extend(result.messages)
        self.active = result.agent
        saving = self.backend.history.append(self.thread_id, result.agent, result.messages)
        try:
            await asyncio.shield(saving)
        except Exception as exc:
            log.exception("openai.history_not_saved", thread=self.thread_id)
            self.emit(
                ev.Notice(
                    level="error",
                    message=f"This turn could not be saved to the conversation's history: {exc}",
                    **self.meta(),
                )
            )
            await self.flush()
        self.ref.send(("turn_done", turn.turn_id))

    def _interrupt(self, why: str) -> bool:
        turn = self.turn
        if turn is None or turn.task is None or turn.finished:
            return False
        turn.why = why
        self.emit(ev.Notice(level="info", message=why, **self.meta()))
        turn.task.cancel()
        return True

    def _decide(self, approval_id: str, decision: str, by: str | None) -> bool:
        pending = self.approvals.pop(approval_id, None)
        if pending is None:
            return False
        pending.timer.cancel()
        answer = {"accept": "accept", "cancel": "cancel"}.get(decision, "decline")
        if not pending.answer.done():
            pending.answer.set_result(answer)
        resolved: ev.ApprovalDecision = (
            decision  # type: ignore[assignment]
            if decision in ("accept", "decline", "cancel", "expired", "withdrawn")
            else "decline"
        )
        self.emit(
            ev.ApprovalResolved(approval_id=approval_id, decision=resolved, by=by, **self.meta())
        )
        return True

    # -- timers and the turn's end ------------------------------------------------------------

    async def handle_info(self, message: Any) -> None:
        try:
            await self._handle_info(message)
        finally:
            await self.flush()

    async def _handle_info(self, message: Any) -> None:
        match message:
            case ("turn_done", turn_id):
                turn = self.turn
                if turn is not None and turn.turn_id == turn_id:
                    if turn.watchdog is not None:
                        turn.watchdog.cancel()
                    self.queue.extendleft(reversed(turn.steered))
                    self.turn = None
                    self._arm_idle()
                    if self.queue:
                        await self._start_turn(self.queue.popleft())
            case ("turn_timeout", turn_id):
                if self.turn is not None and self.turn.turn_id == turn_id:
                    limit = self.agent.turn_timeout
                    self._interrupt(f"The turn took longer than {limit:g} s and was interrupted.")
            case ("approval_expired", approval_id):
                self._decide(approval_id, "expired", None)
            case "idle":
                if self.turn is None and not self.queue and not self.approvals:
                    self.stop("normal")
                else:
                    self._arm_idle()
            case Exit(reason=reason) if not is_normal_exit(reason):
                self.stop(reason)
            case Exit():
                pass
            case _:
                await super().handle_info(message)

    async def terminate(self, reason: object) -> None:
        turn = self.turn
        try:
            if turn is not None and turn.task is not None:
                if not turn.finished:
                    turn.why = f"the thread stopped: {reason!r}"
                    turn.task.cancel()
                await asyncio.gather(turn.task, return_exceptions=True)
            await self.flush()
        finally:
            clients, self.clients = list(self.clients.values()), {}
            for client in clients:
                await client.close()
