"""`OpenAIThread`: a conversation's actor when its agent runs on the openai SDK.

From the outside it is every conversation's actor (`piano.agents.Conversation`, like Codex's
`piano.agents.codex.ConversationThread`): the same calls, the same thread events through the same
`publish`, the same busy policy, turn timeout, approval timeout and idle stop. Surfaces and the
store cannot tell them apart. What is its own:

- **Turns.** A turn (`_turn.TurnRun`) runs as a task of the actor, so the actor keeps
  answering while the model streams; its `turn_id` is Piano's. A steered message joins the
  running turn before its next model round (or runs next if the turn ends first);
  interrupting (the user, ``busy = "interrupt"``, the turn timeout) cancels the task.
- **Approvals.** A shell command that needs approval (see `_tools`) waits for the decision:
  accept runs it, decline tells the model the user refused, cancel ends the turn.
- **Models.** ``/model`` lists the provider's ``GET /v1/models``; the model and reasoning
  effort the conversation chose go with every request of its own agent (``reasoning.effort``
  on the Responses API, ``reasoning_effort`` on Chat Completions); an agent it hands over to
  answers with its own.
- **History.** The conversation (`_history`) is loaded on the first turn and stored after
  each, with the thread's active agent, so an idle-stopped thread resumes it.
- **Events in order.** The turn task emits into the actor's outbox and flushes it under the
  same lock, so the pipeline receives them in the order they happened. The turn's
  `TurnCompleted` is emitted by the actor as it ends the turn (after the history is saved), so
  once it is seen the conversation is idle: a next message starts at once, as on Codex.

`OpenAIBackend` (a `piano.agents.Backend`, registered as ``"openai"``) holds what all OpenAI
threads share (agent settings, tools, notes, history) and makes their actors
(`conversation`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import openai
import structlog

from actors import Registry
from piano.agents._backend import Backend, DaemonSetup
from piano.agents._conversation import (
    DAEMON_STOPPED,
    Conversation,
    ModelsUnavailable,
    Publish,
    Turn,
    stopped_because,
)
from piano.agents._directory import ThreadDirectory, ThreadKey
from piano.agents._messages import ModelChoice
from piano.agents.openai._config import EndpointError, MissingKey, resolve_endpoint
from piano.agents.openai._history import (
    History,
    MemoryHistory,
    Message,
    PostgresHistory,
    SqliteHistory,
)
from piano.agents.openai._tools import SHELL_CWD, ToolContext, ToolRunner
from piano.agents.openai._turn import Profile, TurnRun, provider_message
from piano.config import OpenAIAgentConfig
from piano.tools import Notes, Toolbox, ToolsConfig, owner_of
from schemas import events as ev

if TYPE_CHECKING:
    from piano.config import AgentConfig, Config, ProviderConfig

__all__ = ["OpenAIBackend", "OpenAIThread"]

log = structlog.get_logger(__name__)


class OpenAIBackend(Backend):
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

    @classmethod
    def for_daemon(cls, setup: DaemonSetup) -> OpenAIBackend:
        """The OpenAI agents of `setup.config`: the daemon's notes, histories in the store's
        database, the configured tools."""
        config = setup.config
        return cls(
            config.agents,
            {name: a.openai for name, a in config.agents.items() if a.backend == "openai"},
            providers=config.providers,
            tools=config.tools,
            notes=setup.notes,
            history=(
                SqliteHistory(setup.database) if setup.pool is None else PostgresHistory(setup.pool)
            ),
        )

    @classmethod
    def missing_key(
        cls, agent: AgentConfig, config: Config, environ: Mapping[str, str]
    ) -> str | None:
        """The key variable the agent's endpoint resolves to (``api_key_env``, else its
        provider's ``env_key``), when it is not set."""
        provider = config.providers.get(agent.provider) if agent.provider else None
        try:
            resolve_endpoint(agent.openai, provider, environ)
        except MissingKey as exc:
            return str(exc)
        return None

    def conversation(
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
    ) -> OpenAIThread:
        """An `OpenAIThread` sharing this backend's settings, tools, notes and history."""
        return OpenAIThread(
            thread_id,
            key,
            agent,
            backend=self,
            publish=publish,
            directory=directory,
            conversations=conversations,
            recovering=recovering,
            clock=clock,
        )


@dataclass(slots=True)
class _Turn(Turn):
    """A turn run by a task of the actor; `turn_id` is Piano's own."""

    task: asyncio.Task[None] | None = None
    steered: list[ev.Interaction] = field(default_factory=list)
    why: str = "interrupted by the user"
    finished: bool = False
    completed: ev.TurnCompleted | None = None


class OpenAIThread(Conversation[_Turn]):
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
        conversations: Registry | None = None,
        recovering: str = DAEMON_STOPPED,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            thread_id,
            key,
            agent,
            publish=publish,
            directory=directory,
            conversations=conversations,
            recovering=recovering,
            clock=clock,
        )
        self.backend = backend
        self.active = key.agent
        self.history: list[Message] | None = None
        self.clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}
        self.runner: ToolRunner | None = None

    def format_status(self, state: dict[str, Any]) -> dict[str, Any]:
        """Introspection and crash reports show how many API clients there are, not them."""
        return {**state, "clients": f"<{len(self.clients)} API clients>"}

    def _label(self) -> str:
        return f"{self.active}, openai"

    def _status(self) -> dict[str, Any]:
        return {"codex_thread_id": None, "backend": "openai", "agent": self.active}

    async def init(self) -> None:
        self.trap_exits = True  # so a shutdown runs `terminate`: the turn ends, clients close
        tools = self.backend.tools
        if isinstance(tools, ToolsConfig):
            self.runner = Toolbox(self.system, tools)
        else:
            self.runner = tools
        await super().init()

    # -- what the turn uses (TurnHost; emit, flush, meta and end_approvals are Conversation's) --

    def profile(self, agent: str) -> Profile:
        """`agent` as the turn uses it; the conversation's own agent with the model and effort
        it chose (``/model``, ``/effort``): an agent it hands over to keeps its own."""
        profile = self.backend.profile(agent)
        if agent != self.key.agent:
            return profile
        return dataclasses.replace(
            profile, model=self.settings.model or profile.model, effort=self.settings.effort
        )

    async def _models(self) -> tuple[ModelChoice, ...]:
        """What the provider lists at ``GET /v1/models``."""
        try:
            profile = self.profile(self.key.agent)
            page = await self.client(profile).models.list()
            found = [model.id async for model in page]
        except EndpointError as exc:
            raise ModelsUnavailable(str(exc)) from exc
        except openai.OpenAIError as exc:
            endpoint = self.profile(self.key.agent).endpoint().base_url
            raise ModelsUnavailable(
                f"the provider did not list its models: {provider_message(exc, endpoint)}"
            ) from exc
        return tuple(ModelChoice(id=model) for model in sorted(found))

    def client(self, profile: Profile) -> openai.AsyncOpenAI:
        endpoint = profile.endpoint()
        cache = (endpoint.base_url, hashlib.sha256(endpoint.api_key.encode()).hexdigest())
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
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

        def decided(decision: str) -> None:
            if not answer.done():
                answer.set_result(decision)

        self._ask(
            item.id, decided, kind="command", command=item.command, cwd=SHELL_CWD, reason=reason
        )
        await self.flush()
        return await answer

    # -- turns ----------------------------------------------------------------------------------

    async def _steer(self, turn: _Turn, interaction: ev.Interaction) -> bool:
        turn.steered.append(interaction)
        return True

    async def _begin(self, interaction: ev.Interaction) -> None:
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
        self._watch(turn)

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
        turn.completed = result.completed
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

    async def _stop_turn(self, turn: _Turn, why: str) -> bool:
        if turn.task is None or turn.finished:
            return False
        turn.why = why
        self.emit(ev.Notice(level="info", message=why, **self.meta()))
        turn.task.cancel()
        return True

    async def _handle_info(self, message: Any) -> None:
        match message:
            case ("turn_done", turn_id):
                turn = self.turn
                if turn is not None and turn.turn_id == turn_id:
                    self.queue.extendleft(reversed(turn.steered))
                    await self._end_turn([turn.completed] if turn.completed else [])
            case _:
                await super()._handle_info(message)

    async def terminate(self, reason: object) -> None:
        turn = self.turn
        try:
            if turn is not None and turn.task is not None:
                if not turn.finished:
                    turn.why = stopped_because(reason)
                    turn.task.cancel()
                await asyncio.gather(turn.task, return_exceptions=True)
                if turn.completed is not None:
                    self.emit(turn.completed)
            self._close_queue(reason)
            await self.flush()
        finally:
            clients, self.clients = list(self.clients.values()), {}
            for client in clients:
                await client.close()
