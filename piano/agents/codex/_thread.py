"""`ConversationThread`: a conversation's actor when its agent runs on Codex.

It turns user messages into Codex turns and Codex's notifications into Piano's thread events
(`schemas.events`), which it hands to `publish` (the pipeline, in the daemon). The calls, the
busy policy, the turn and approval timeouts and the idle stop are every conversation's
(`piano.agents._conversation.Conversation`); what is Codex's:

- **Turns.** A turn is a Codex turn (`turn/start`) on the conversation's Codex thread, started
  (`thread/start`) on its first message and resumed (`thread/resume`) on a new process. Each
  `turn/start` names the conversation's model and reasoning effort (``/model``, ``/effort``);
  the models it may choose are codex's catalogue for the agent's provider (`model/list`). Steering
  is `turn/steer` (before Codex has named the turn, or when it refuses, with a warning, the
  message is queued instead); interrupting is `turn/interrupt` — also what the turn timeout
  does. A `turn/start` that gets no answer in time is never reported failed while Codex might
  still run it: the Codex process is killed (and restarted) first, so its items cannot land in
  a later interaction.
- **Provider failures.** A turn that failed because of its provider (unreachable, an error
  answer) ends with Codex's error plus what the provider answered to a request of Piano's own
  (`ProbeProvider`): its address, HTTP status and message, which Codex does not pass on.
- **Approvals.** Codex's request to run a command, apply a change or call an MCP tool
  (`ApprovalAsked`, from the Codex client) is answered with the decision.
- **Rollouts.** After every turn what codex added to the thread's rollout file is stored
  (`piano.agents.codex._rollouts`); before ``thread/resume`` a rollout the local CODEX_HOME
  lacks (a lost state directory, another node) is written back at its recorded path — never
  for a thread the local codex has loaded. A thread whose rollout is gone everywhere (codex:
  "no rollout found") is rebuilt: ``thread/start``, then ``thread/inject_items`` with the
  conversation so far from Piano's store (each message and its answer); its new codex id is
  remembered and the user told. A thread the local codex holds with an older history than
  the store's is not resumed (the turn fails saying to send again in a minute), and every
  stop of the actor asks codex to unload its thread (``thread/unsubscribe``).
- **Codex restarts.** The thread monitors the Codex client. If it dies mid-turn, the turn is
  completed as ``interrupted`` with a notice saying why, and the next message resumes the Codex
  thread on the new process.
- **Stops.** On every stop the running turn is interrupted in Codex too (so it does not go on
  running commands for no one) and closed as ``interrupted`` with the reason; queued messages
  stay pending in the store for the conversation's next actor (at ``/new`` they end
  ``interrupted`` instead, saying so: see `Conversation._close_queue`). A turn that an actor
  killed outright left running is interrupted by its restarted successor (`_abandon`), which
  drops the turn's late notifications so they cannot end the turn it runs itself.
- **Turn ids.** `TurnStarted` is emitted once Codex has named the turn (``turn/start``
  returned), so the store's interaction records the turn that ran it; Codex's notifications of
  the turn wait in the mailbox meanwhile, so they still come after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from actors import NOREPLY, ActorExited, ActorTimeout, Caller, Down, MonitorRef, Registry
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
from piano.agents.codex._rollouts import (
    ROLLOUT_LOST,
    RolloutError,
    RolloutStale,
    RolloutStore,
    restore_rollout,
    save_rollout,
)
from piano.codex import (
    CODEX,
    ApprovalAsked,
    CodexError,
    CodexNotification,
    CodexProcess,
    CodexRpcError,
    CodexTimeout,
    ProbeProvider,
    Translator,
    codex_provider_id,
    connection,
)
from piano.media import image_type
from piano.tools import workspace_of
from schemas import events as ev
from schemas.codex import (
    CommandExecutionRequestApprovalParams,
    LocalImageInput,
    McpServerElicitationRequestParams,
    ModelListParams,
    TextInput,
    ThreadInjectItemsParams,
    ThreadLoadedListParams,
    ThreadResumeParams,
    ThreadStartParams,
    ThreadUnsubscribeParams,
    TurnInterruptParams,
    TurnStartParams,
    TurnSteerParams,
    UserInput,
)

if TYPE_CHECKING:
    from piano.config import AgentConfig

__all__ = ["ConversationThread"]


def _input(interaction: ev.Interaction) -> list[UserInput]:
    """A message as Codex turn input: its text, then its image attachments as local images
    (Codex reads them and sends them to the model); other attachments are in the text."""
    items: list[UserInput] = [TextInput(text=interaction.text)]
    items += [LocalImageInput(path=path) for path in interaction.attachments if image_type(path)]
    return items


def _message(role: str, text: str) -> dict[str, Any]:
    """A message as a raw Responses API item (what ``thread/inject_items`` takes)."""
    kind = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def _workspace(agent: AgentConfig) -> str:
    path = Path(agent.workspace).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return str(path)


class ConversationThread(Conversation[Turn]):
    """One conversation's actor on Codex; see the module documentation."""

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
        rollouts: RolloutStore | None = None,
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
        self.sessions = sessions
        self.codex_thread_id = codex_thread_id
        self.codex_config = codex_config
        self.rollouts = rollouts
        self.rollout_path: str | None = None
        self.translator = Translator(thread_id, clock, agent=key.agent)
        self.process: CodexProcess | None = None
        self.client: MonitorRef | None = None
        self.abandoned: set[str] = set()

    def _status(self) -> dict[str, Any]:
        return {"codex_thread_id": self.codex_thread_id}

    # -- requests ----------------------------------------------------------------------------

    async def _handle_call(self, message: Any, caller: Caller) -> Any:
        if isinstance(message, ApprovalAsked):
            self._ask_approval(message, caller)
            return NOREPLY
        return await super()._handle_call(message, caller)

    async def _steer(self, turn: Turn, interaction: ev.Interaction) -> bool:
        if turn.turn_id is None or self.process is None:
            return False
        try:
            await self.process.call(
                TurnSteerParams(
                    thread_id=self.codex_thread_id or "",
                    expected_turn_id=turn.turn_id,
                    input=_input(interaction),
                )
            )
        except CodexError as exc:
            self.emit(ev.Notice(level="warning", message=f"could not steer: {exc}", **self.meta()))
            return False
        return True

    async def _cwd(self) -> str:
        """Where this conversation works: its chosen project (or its own worktree of it), else
        its agent's workspace (created)."""
        key = self.key
        chosen = await workspace_of(
            self.system,
            self.thread_id,
            surface=key.surface,
            conversation=key.conversation,
            agent=key.agent,
        )
        if chosen is not None:
            return str(chosen.path)
        return await asyncio.to_thread(_workspace, self.agent)

    async def _attach(self, cwd: str | None = None) -> CodexProcess:
        """The live Codex connection, with this thread started or resumed on it (in `cwd`,
        default where the conversation works)."""
        if self.process is not None and self.process.exit is None:
            return self.process
        client, process = await connection(self.system)
        if self.client is not None:
            self.demonitor(self.client)
        self.client = self.monitor(client)
        agent = self.agent
        workspace = cwd if cwd is not None else await self._cwd()
        common: dict[str, Any] = {
            "cwd": workspace,
            "model": self.model,
            "model_provider": codex_provider_id(agent.provider) if agent.provider else None,
            "approval_policy": agent.approval_policy,
            "sandbox": agent.sandbox,
            "developer_instructions": agent.instructions,
        }
        if self.codex_config is not None:
            common["config"] = self.codex_config(self.thread_id)
        if self.codex_thread_id is None and self.directory is not None:
            found, codex_thread_id = await self.directory.thread_for(self.key)
            if found == self.thread_id:  # a restarted actor: its thread may have started
                self.codex_thread_id = codex_thread_id
        if self.codex_thread_id is None:
            started = await process.call(ThreadStartParams(**common))
            self.codex_thread_id = started.thread.id
            self.rollout_path = started.thread.path
            if self.directory is not None:
                await self.directory.remember_codex_thread(self.thread_id, self.codex_thread_id)
        else:
            await self._restore(process, self.codex_thread_id)
            try:
                resumed = await process.call(
                    ThreadResumeParams(thread_id=self.codex_thread_id, exclude_turns=True, **common)
                )
            except CodexRpcError as exc:
                if ROLLOUT_LOST not in exc.message:
                    raise
                await self._rebuild(process, common)
            else:
                self.rollout_path = resumed.thread.path
                await self._save(process)  # a rollout codex had but the store had not
        for key in self.sessions.keys(self.ref):
            self.sessions.unregister(key, self.ref)
        self.sessions.register(self.codex_thread_id, self.ref)
        self.process = process
        return process

    async def _restore(self, process: CodexProcess, codex_thread_id: str) -> None:
        """Write the thread's stored rollout back into the local CODEX_HOME if it is missing
        there or not the stored one (`restore_rollout`), unless the local codex has the thread
        loaded. A store that cannot be read or a file that cannot be written fails the turn:
        a thread must not be rebuilt as lost while its rollout is only out of reach. A stored
        rollout Piano refuses to write (`RolloutError`) is logged and left out."""
        if self.rollouts is None or process.codex_home is None:
            return
        loaded = await process.call(ThreadLoadedListParams())
        try:
            done, size = await restore_rollout(
                self.rollouts,
                process.codex_home,
                codex_thread_id,
                loaded=codex_thread_id in loaded.data,
            )
        except RolloutError as exc:  # unusable: codex resumes what it has, or not
            self.log.error(
                "codex.rollout_not_restored", codex_thread=codex_thread_id, error=str(exc)
            )
            return
        if done == "stale":
            self.log.warning("codex.thread_stale", codex_thread=codex_thread_id)
            await self._unsubscribe(process, codex_thread_id)
            raise RolloutStale(
                "Codex on this node still holds an older copy of this conversation's thread "
                "(it ran on another node meanwhile) and lets it go within a minute; send your "
                "message again then"
            )
        if done == "written":
            self.log.info("codex.rollout_restored", codex_thread=codex_thread_id, size=size)

    async def _unsubscribe(self, process: CodexProcess | None, codex_thread_id: str) -> None:
        """Ask codex to unload the thread (it does, about a minute later), so that a later
        resume here, maybe after the conversation ran on another node, reads its rollout."""
        if process is None or process.exit is not None:
            return
        with contextlib.suppress(CodexError, OSError, asyncio.TimeoutError):
            await process.call(ThreadUnsubscribeParams(thread_id=codex_thread_id), timeout=5)

    async def _save(self, process: CodexProcess | None) -> None:
        """Store what codex added to the thread's rollout (`save_rollout`). Never fails the
        conversation: what is not stored now is stored with the next save."""
        if (
            self.rollouts is None
            or process is None
            or process.codex_home is None
            or self.codex_thread_id is None
            or not self.rollout_path
        ):
            return
        try:
            done, size = await save_rollout(
                self.rollouts,
                process.codex_home,
                self.codex_thread_id,
                self.thread_id,
                self.rollout_path,
            )
        except Exception as exc:
            self.log.warning(
                "codex.rollout_not_saved", codex_thread=self.codex_thread_id, error=repr(exc)
            )
            return
        self.log.debug(
            "codex.rollout_saved", codex_thread=self.codex_thread_id, done=done, size=size
        )

    async def _rebuild(self, process: CodexProcess, common: dict[str, Any]) -> None:
        """Codex has no rollout of the thread anywhere (not here, not in the store): start a
        new Codex thread, give it the conversation so far from Piano's own store
        (``thread/inject_items``), remember its id and tell the user it changed."""
        lost = self.codex_thread_id
        started = await process.call(ThreadStartParams(**common))
        self.codex_thread_id = started.thread.id
        self.rollout_path = started.thread.path
        turns = await self.directory.past_turns(self.thread_id) if self.directory else []
        items = [
            item
            for text, answer in turns
            for item in (_message("user", text), _message("assistant", answer) if answer else None)
            if item is not None
        ]
        if items:
            await process.call(ThreadInjectItemsParams(thread_id=self.codex_thread_id, items=items))
        if self.directory is not None:
            await self.directory.remember_codex_thread(self.thread_id, self.codex_thread_id)
        self.log.warning(
            "codex.thread_rebuilt", lost=lost, codex_thread=self.codex_thread_id, turns=len(turns)
        )
        self.emit(
            ev.Notice(
                level="warning",
                message=(
                    f"Codex no longer had this conversation's thread {lost} (its history file "
                    f"was lost), so it was started again with the conversation so far: its "
                    f"codex id is now {self.codex_thread_id} (codex resume "
                    f"{self.codex_thread_id})."
                ),
                **self.meta(),
            )
        )

    async def _begin(self, interaction: ev.Interaction) -> None:
        turn = self.turn = Turn(interaction)
        self.translator.begin(interaction.id, self.model)
        process: CodexProcess | None = None
        try:
            # Every turn names its cwd: codex keeps it (and its sandbox's writable root) for the
            # thread, so a conversation that chose another project moves with its next turn.
            cwd = await self._cwd()
            process = await self._attach(cwd)
            started = await process.call(
                TurnStartParams(
                    thread_id=self.codex_thread_id or "",
                    input=_input(interaction),
                    model=self.model,
                    effort=self.settings.effort,
                    cwd=cwd,
                )
            )
        except (CodexError, ActorExited, ActorTimeout) as exc:
            self.emit(ev.TurnStarted(interaction=interaction, agent=self.key.agent, **self.meta()))
            why = f"could not start the turn: {exc}"
            if isinstance(exc, CodexTimeout) and process is not None:
                await process.kill(f"turn/start unanswered for thread {self.thread_id}")
                why = (
                    f"Codex did not start the turn in time ({exc}); it was restarted, so the "
                    "turn cannot run later"
                )
            await self._end_turn(self.translator.complete("failed", why))
            return
        if self.turn is not turn:
            return
        turn.turn_id = started.turn.id
        self.translator.turn_id = self.translator.turn_id or started.turn.id
        self.emit(ev.TurnStarted(interaction=interaction, agent=self.key.agent, **self.meta()))
        self._watch(turn)

    async def _models(self) -> tuple[ModelChoice, ...]:
        """Codex's catalogue for the agent's provider (``model/list``, every page)."""
        provider = codex_provider_id(self.agent.provider) if self.agent.provider else None
        choices: list[ModelChoice] = []
        cursor: str | None = None
        try:
            _, process = await connection(self.system)
            for _page in range(20):
                listed = await process.call(
                    ModelListParams(cursor=cursor, model_provider=provider), timeout=30
                )
                choices += [
                    ModelChoice(
                        id=model.id,
                        description=model.description,
                        efforts=tuple(
                            e.reasoning_effort for e in model.supported_reasoning_efforts
                        ),
                        default_effort=model.default_reasoning_effort,
                        default=model.is_default,
                    )
                    for model in listed.data
                    if not model.hidden
                ]
                cursor = listed.next_cursor
                if cursor is None:
                    break
        except CodexError as exc:
            raise ModelsUnavailable(f"Codex could not list its models: {exc}") from exc
        return tuple(choices)

    async def _stop_turn(self, turn: Turn, why: str) -> bool:
        if turn.turn_id is None or self.process is None:
            return False
        self.emit(ev.Notice(level="info", message=why, **self.meta()))
        try:
            await self.process.call(
                TurnInterruptParams(thread_id=self.codex_thread_id or "", turn_id=turn.turn_id)
            )
        except CodexError as exc:
            self.emit(
                ev.Notice(level="error", message=f"could not interrupt: {exc}", **self.meta())
            )
            return False
        return True

    async def _abandon(self, turn_id: str) -> None:
        """Interrupt a turn a killed predecessor left running in this Codex process (a new
        process does not know it: the error is ignored), and drop its late notifications."""
        self.abandoned.add(turn_id)
        try:
            process = await self._attach()
            await process.call(
                TurnInterruptParams(thread_id=self.codex_thread_id or "", turn_id=turn_id),
                timeout=5,
            )
        except Exception as exc:  # best effort: the turn is closed in the store regardless
            self.log.info("thread.abandoned_turn_not_interrupted", turn=turn_id, error=repr(exc))

    def _ask_approval(self, asked: ApprovalAsked, caller: Caller) -> None:
        params = asked.params
        if isinstance(params, McpServerElicitationRequestParams):
            self._ask_tool_call(asked.request_id, params, caller)
            return
        command = params if isinstance(params, CommandExecutionRequestApprovalParams) else None
        item = self.translator.open.get(params.item_id)
        self._ask(
            params.item_id,
            caller.reply,
            kind="command" if command is not None else "file_change",
            command=command.command if command is not None else None,
            cwd=command.cwd if command is not None else None,
            reason=params.reason,
            changes=list(item.changes) if item is not None else [],
        )

    def _ask_tool_call(
        self, request_id: int | str, params: McpServerElicitationRequestParams, caller: Caller
    ) -> None:
        """An MCP tool asks to run: its item (started just before) is the newest open tool
        call of that server and tool."""
        tool_name, arguments = params.tool_call() or ("", None)
        tool = f"{params.server_name}.{tool_name}"
        open_calls = [
            item.id
            for item in self.translator.open.values()
            if item.kind == "tool_call" and item.tool == tool
        ]
        self._ask(
            open_calls[-1] if open_calls else f"elicitation:{request_id}",
            caller.reply,
            kind="tool_call",
            tool=tool,
            arguments=msgspec.json.encode(arguments).decode() if arguments is not None else None,
            reason=params.message or None,
        )

    # -- what Codex tells us -----------------------------------------------------------------

    async def _handle_info(self, message: Any) -> None:
        match message:
            case CodexNotification(params=params) if self._abandoned(params):
                pass
            case CodexNotification(method=method, params=params, received_at=received_at):
                events = self.translator.feed(method, params, received_at)
                done = events[-1] if events else None
                if isinstance(done, ev.TurnCompleted):
                    for event in events[:-1]:
                        self.emit(event)
                    if self.translator.provider_failed():
                        done = await self._with_provider_answer(done)
                    await self._end_turn([done])
                    await self._save(self.process)
                else:
                    for event in events:
                        self.emit(event)
            case Down(monitor=monitor) if monitor is self.client:
                self.client = None
                self.process = None
                if self.turn is not None:
                    self.emit(
                        ev.Notice(
                            level="error",
                            message="The Codex process stopped; the running turn was interrupted.",
                            **self.meta(),
                        )
                    )
                    await self._end_turn(
                        self.translator.complete("interrupted", "the codex process exited")
                    )
            case _:
                await super()._handle_info(message)

    def _abandoned(self, params: Any) -> bool:
        """Whether a notification belongs to an abandoned turn (see `_abandon`)."""
        if not self.abandoned:
            return False
        turn_id = getattr(params, "turn_id", None) or getattr(
            getattr(params, "turn", None), "id", None
        )
        return turn_id in self.abandoned

    async def _with_provider_answer(self, done: ev.TurnCompleted) -> ev.TurnCompleted:
        """`done` with what the agent's provider answers now added to its error."""
        client = self.system.whereis(CODEX)
        if client is None or not self.agent.provider:
            return done
        try:
            answer = await client.call(ProbeProvider(self.agent.provider), timeout=60)
        except Exception as exc:
            self.log.warning("thread.provider_probe_failed", error=str(exc))
            return done
        if answer is None:
            return done
        name = self.agent.provider
        if answer.ok:
            error = f"{done.error} (provider {name} answers a small request now: {answer.detail})"
        else:
            error = f"{done.error} — provider {name}: {answer.detail}"
        return msgspec.structs.replace(done, error=error)

    async def terminate(self, reason: object) -> None:
        turn = self.turn
        if turn is not None:
            if turn.turn_id is not None and self.process is not None:
                with contextlib.suppress(CodexError, OSError, asyncio.TimeoutError):
                    await self.process.call(
                        TurnInterruptParams(
                            thread_id=self.codex_thread_id or "", turn_id=turn.turn_id
                        ),
                        timeout=5,
                    )
            closing = self.translator.complete("interrupted", stopped_because(reason))
            await self._end_turn(closing, start_next=False)
        self._close_queue(reason)
        await self.flush()
        await self._save(self.process)
        if self.codex_thread_id is not None:
            await self._unsubscribe(self.process, self.codex_thread_id)
