"""One turn of an OpenAI agent: model rounds and tool calls until the model answers.

A turn streams a model response (`_responses` or `_chat`), runs the tool calls it asks for,
feeds the results back, and repeats until a response asks for no tool — or until the
agent's `max_rounds` responses have been used, which ends the turn as failed with a message
saying so (the calls of that last response are not run). What happens becomes thread events
in the same shape as the Codex client's: the user's message as a ``user_message`` item, each
response's text as an ``agent_message`` item streamed by deltas, reasoning as ``reasoning``,
shell calls as ``command`` items, other tools as ``tool_call`` items, handoffs as ``handoff``
items, a `TokenUsage` per response, and `TurnCompleted` with the last message as response (returned
to the actor, which emits it as it ends the turn).
Every item an agent produced names it (`Item.agent`).

Errors are explicit. 408, 409, 429, 5xx and refused connections are retried with back-off
(``Retry-After`` when the server sends one), each announced by a ``retrying`` notice, as long
as nothing of the response has been streamed yet; a bad key, an unknown model or any other
refusal fails the turn with the provider's own message; a stream cut before its end fails the
turn (`StreamTruncated`). Interrupting (the task is cancelled) or a ``cancel`` decision ends it
as interrupted. However it ends, every item started is completed first (a message cut short
keeps the text that was streamed, marked failed or interrupted).
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import openai
import structlog

from actors import Backoff
from piano.agents.openai._chat import chat_round
from piano.agents.openai._config import Endpoint, EndpointError
from piano.agents.openai._handoff import HANDOFF, handoff_spec, parse_handoff
from piano.agents.openai._history import Message, ToolCall, trim
from piano.agents.openai._responses import responses_round
from piano.agents.openai._round import ModelFailed, Round, StreamTruncated
from piano.agents.openai._tools import (
    ToolContext,
    ToolOutcome,
    ToolSpec,
    item_for,
    needs_approval,
    parse_arguments,
    run_shell,
    run_tool,
    tool_specs,
)
from piano.config import OpenAIAgentConfig
from piano.media import image_type
from schemas import events as ev

__all__ = ["Profile", "TurnCancelled", "TurnHost", "TurnResult", "TurnRun", "provider_message"]

log = structlog.get_logger(__name__)

_RETRY_STATUSES = frozenset({408, 409, 429})


class TurnCancelled(Exception):
    """The user answered an approval with ``cancel``: the turn ends as interrupted."""


@dataclass(frozen=True, slots=True)
class Profile:
    """An agent as a turn uses it (from its `AgentConfig` and ``openai`` options)."""

    name: str
    model: str
    instructions: str | None
    approval_policy: str
    options: OpenAIAgentConfig
    endpoint: Callable[[], Endpoint]
    effort: str | None = None
    """The reasoning effort its conversation chose (``/effort``); None: the model's default."""

    def tools(self) -> list[ToolSpec]:
        specs = tool_specs(self.options.tools)
        if self.options.handoffs:
            specs.append(handoff_spec(self.name, self.options.handoffs))
        return specs

    def request_options(self) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        if self.options.temperature is not None:
            extra["temperature"] = self.options.temperature
        if self.options.max_output_tokens is not None:
            key = "max_output_tokens" if self.endpoint().api == "responses" else "max_tokens"
            extra[key] = self.options.max_output_tokens
        if self.effort is not None:
            if self.endpoint().api == "responses":
                extra["reasoning"] = {"effort": self.effort}
            else:
                extra["reasoning_effort"] = self.effort
        return extra


class TurnHost(Protocol):
    """What the thread actor provides to its running turn."""

    def emit(self, event: ev.ThreadEvent) -> None: ...

    async def flush(self) -> None: ...

    def meta(self) -> dict[str, Any]: ...

    def profile(self, agent: str) -> Profile: ...

    def client(self, profile: Profile) -> openai.AsyncOpenAI: ...

    def take_steered(self) -> list[ev.Interaction]: ...

    async def ask_approval(self, item: ev.Item, reason: str | None) -> str: ...

    def end_approvals(self) -> None:
        """Withdraw the turn's undecided approvals (it is ending)."""
        ...


@dataclass(slots=True)
class TurnResult:
    """How a turn ended: `completed` is its `TurnCompleted`, not yet emitted — the actor emits
    it as it ends the turn, so that a conversation is idle once its turn is seen to end."""

    status: ev.TurnStatus
    agent: str
    messages: list[Message]
    completed: ev.TurnCompleted
    error: str | None = None


def provider_message(exc: BaseException, endpoint: str = "") -> str:
    """What the provider said, for the user: status and message, never the key."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        said = body.get("message") if isinstance(body, Mapping) else None
        if not isinstance(said, str) or not said:
            said = body if isinstance(body, str) and body else exc.response.reason_phrase
        return f"the model provider answered {exc.status_code}: {said}"
    if isinstance(exc, openai.APITimeoutError):
        return f"the model provider did not answer in time ({endpoint})"
    if isinstance(exc, openai.APIConnectionError):
        return f"could not reach the model provider at {endpoint}: {exc.__cause__ or exc}"
    return str(exc) or type(exc).__name__


def _retry_delay(exc: BaseException, attempt: int, options: OpenAIAgentConfig) -> float | None:
    """Seconds to wait before retrying `exc`, or None when it is not to be retried."""
    if isinstance(exc, openai.APIStatusError):
        if exc.status_code not in _RETRY_STATUSES and exc.status_code < 500:
            return None
        after = exc.response.headers.get("retry-after")
        try:
            if after is not None:
                return min(max(float(after), 0.0), options.retry_backoff_cap)
        except ValueError:
            pass
    elif not isinstance(exc, openai.APIConnectionError):
        return None
    return Backoff(initial=options.retry_backoff, cap=options.retry_backoff_cap).delay(attempt + 1)


class _Stream:
    """The `RoundSink` of one response attempt: items created as their first delta arrives."""

    def __init__(self, run: TurnRun, agent: str) -> None:
        self.run = run
        self.agent = agent
        self.message: ev.Item | None = None
        self.thought: ev.Item | None = None

    @property
    def started(self) -> bool:
        return self.message is not None or self.thought is not None

    async def text(self, delta: str) -> None:
        if self.message is None:
            self.message = self.run.start_item("agent_message", agent=self.agent)
        self.run.streamed.setdefault(self.message.id, []).append(delta)
        self.run.host.emit(
            ev.ItemDelta(item_id=self.message.id, stream="text", delta=delta, **self.run.meta())
        )
        await self.run.host.flush()

    async def reasoning(self, delta: str) -> None:
        if self.thought is None:
            self.thought = self.run.start_item("reasoning", agent=self.agent)
        self.run.host.emit(
            ev.ItemDelta(
                item_id=self.thought.id, stream="reasoning", delta=delta, **self.run.meta()
            )
        )
        await self.run.host.flush()

    def finish(self, result: Round) -> None:
        if self.thought is not None or result.reasoning:
            thought = self.thought or self.run.start_item("reasoning", agent=self.agent)
            self.run.complete_item(thought, text=result.reasoning)
        if self.message is not None or result.text:
            message = self.message or self.run.start_item("agent_message", agent=self.agent)
            self.run.complete_item(message, text=result.text)
            self.run.response = result.text


@dataclass(slots=True)
class TurnRun:
    """Runs one turn for `host`; `run` always returns, with the turn's `TurnCompleted`."""

    host: TurnHost
    interaction: ev.Interaction
    agent: str
    history: list[Message]
    tools: ToolContext
    history_limit: Callable[[str], int]
    interrupted_because: Callable[[], str]
    response: str = ""
    new: list[Message] = field(default_factory=list)
    open: dict[str, ev.Item] = field(default_factory=dict)
    streamed: dict[str, list[str]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _prefix: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    def meta(self) -> dict[str, Any]:
        return self.host.meta()

    def start_item(self, kind: ev.ItemKind, **fields: Any) -> ev.Item:
        item = ev.Item(id=f"{self._prefix}-{next(self._ids)}", kind=kind, **fields)
        self.open[item.id] = item
        self.host.emit(ev.ItemStarted(item=item, **self.meta()))
        return item

    def complete_item(self, item: ev.Item, **changes: Any) -> ev.Item:
        status = changes.pop("status", None) or (
            "completed" if item.status == "in_progress" else item.status
        )
        done = msgspec.structs.replace(item, status=status, **changes)
        self.open.pop(item.id, None)
        self.host.emit(ev.ItemCompleted(item=done, **self.meta()))
        return done

    def _user_message(self, interaction: ev.Interaction) -> None:
        item = self.start_item("user_message", text=interaction.text, status="completed")
        self.complete_item(item)
        images = tuple(path for path in interaction.attachments if image_type(path))
        self.new.append(Message(role="user", text=interaction.text, images=images))

    async def run(self) -> TurnResult:
        status: ev.TurnStatus = "completed"
        error: str | None = None
        endpoint = ""
        try:
            self._user_message(self.interaction)
            await self.host.flush()
            rounds = 0
            while True:
                for steered in self.host.take_steered():
                    self._user_message(steered)
                profile = self.host.profile(self.agent)
                endpoint = profile.endpoint().base_url
                rounds += 1
                result = await self._round(profile)
                if not result.calls:
                    self.new.append(Message(role="assistant", text=result.text, agent=self.agent))
                    break
                if rounds >= profile.options.max_rounds:
                    error = (
                        f"The agent used its limit of {profile.options.max_rounds} model rounds "
                        "for one message and was stopped before finishing; send a message to "
                        "let it continue."
                    )
                    self._unrun(result, error)
                    status = "failed"
                    break
                self.new.append(
                    Message(
                        role="assistant",
                        text=result.text,
                        agent=self.agent,
                        calls=tuple(result.calls),
                    )
                )
                for call in result.calls:
                    outcome = await self._call(call, profile)
                    self.new.append(
                        Message(
                            role="tool",
                            text=outcome.output,
                            images=outcome.images,
                            call_id=call.id,
                        )
                    )
                    await self.host.flush()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            status, error = "interrupted", self.interrupted_because()
        except TurnCancelled as exc:
            status, error = "interrupted", str(exc)
        except (StreamTruncated, ModelFailed, EndpointError) as exc:
            status, error = "failed", str(exc)
        except openai.OpenAIError as exc:
            status, error = "failed", provider_message(exc, endpoint)
        except Exception as exc:
            log.exception("openai.turn_crashed", agent=self.agent)
            status, error = "failed", f"internal error: {exc!r}"
        self.host.end_approvals()
        self._close_calls()
        closing: ev.ItemStatus = "failed" if status == "failed" else "interrupted"
        for item in list(self.open.values()):
            text = "".join(self.streamed.get(item.id, ())) or item.text
            self.complete_item(item, status=closing, text=text)
        await self.host.flush()
        completed = ev.TurnCompleted(
            status=status, response=self.response, error=error, **self.meta()
        )
        return TurnResult(status, self.agent, self.new, completed, error)

    def _unrun(self, result: Round, why: str) -> None:
        """Record a response whose calls are not run (round limit), with its calls answered."""
        self.new.append(
            Message(role="assistant", text=result.text, agent=self.agent, calls=tuple(result.calls))
        )
        self.new.extend(
            Message(role="tool", text=f"Not run. {why}", call_id=call.id) for call in result.calls
        )

    def _close_calls(self) -> None:
        """Answer calls left without a result (an interrupt), so the history stays valid."""
        answered = {m.call_id for m in self.new if m.role == "tool"}
        for message in list(self.new):
            for call in message.calls:
                if call.id not in answered:
                    self.new.append(
                        Message(role="tool", text="Not run: the turn ended first.", call_id=call.id)
                    )

    async def _round(self, profile: Profile) -> Round:
        client = self.host.client(profile)
        endpoint = profile.endpoint()
        messages = trim([*self.history, *self.new], self.history_limit(self.agent))
        fn = responses_round if endpoint.api == "responses" else chat_round
        for attempt in itertools.count():
            sink = _Stream(self, self.agent)
            try:
                result = await fn(
                    client,
                    model=profile.model,
                    instructions=profile.instructions,
                    messages=messages,
                    tools=profile.tools(),
                    sink=sink,
                    options=profile.request_options(),
                )
            except openai.OpenAIError as exc:
                delay = None if sink.started else _retry_delay(exc, attempt, profile.options)
                if delay is None or attempt >= profile.options.max_retries:
                    raise
                self.host.emit(
                    ev.Notice(
                        level="warning",
                        message=f"{provider_message(exc, endpoint.base_url)}; retrying in "
                        f"{delay:.1f}s (attempt {attempt + 2} of "
                        f"{profile.options.max_retries + 1})",
                        retrying=True,
                        **self.meta(),
                    )
                )
                await self.host.flush()
                log.info("openai.retrying", agent=profile.name, attempt=attempt + 1, delay=delay)
                await asyncio.sleep(delay)
                continue
            sink.finish(result)
            if result.usage is not None:
                usage = result.usage
                self.host.emit(
                    ev.TokenUsage(
                        input_tokens=usage.input_tokens,
                        cached_input_tokens=usage.cached_input_tokens,
                        output_tokens=usage.output_tokens,
                        reasoning_tokens=usage.reasoning_tokens,
                        total_tokens=usage.total_tokens,
                        model=profile.model,
                        **self.meta(),
                    )
                )
            if result.finish not in ("stop", "tool_calls"):
                self.host.emit(
                    ev.Notice(
                        level="warning",
                        message=f"The model stopped early ({result.finish}): the answer may be "
                        "incomplete.",
                        **self.meta(),
                    )
                )
            await self.host.flush()
            return result
        raise AssertionError("unreachable")

    async def _call(self, call: ToolCall, profile: Profile) -> ToolOutcome:
        if call.name == HANDOFF and profile.options.handoffs:
            return self._handoff(call, profile)
        allowed = {spec.name for spec in profile.tools()}
        item = self.start_item_for(call)
        await self.host.flush()
        if call.name not in allowed:
            outcome = ToolOutcome(f"{call.name}: no such tool for this agent", "failed")
        elif call.name == "shell":
            outcome = await self._shell(call, item, profile)
        else:
            outcome = await run_tool(call, self.tools)
        self.complete_item(
            item,
            status=outcome.status,
            output=outcome.output,
            exit_code=outcome.exit_code,
        )
        return outcome

    def start_item_for(self, call: ToolCall) -> ev.Item:
        item = item_for(call, f"{self._prefix}-{next(self._ids)}", self.agent)
        self.open[item.id] = item
        self.host.emit(ev.ItemStarted(item=item, **self.meta()))
        return item

    async def _shell(self, call: ToolCall, item: ev.Item, profile: Profile) -> ToolOutcome:
        try:
            arguments = parse_arguments(call)
            command = str(arguments["command"])
        except (KeyError, ValueError) as exc:
            return ToolOutcome(f"shell: {exc}", "failed")
        if needs_approval(
            profile.approval_policy, command, bool(arguments.get("require_approval"))
        ):
            reason = arguments.get("justification")
            decision = await self.host.ask_approval(item, str(reason) if reason else None)
            if decision == "cancel":
                raise TurnCancelled("the user cancelled the turn instead of approving a command")
            if decision != "accept":
                return ToolOutcome("The user declined to run this command.", "declined")
        return await run_shell(self.tools, arguments)

    def _handoff(self, call: ToolCall, profile: Profile) -> ToolOutcome:
        try:
            handoff = parse_handoff(call, self.agent, profile.options.handoffs)
        except ValueError as exc:
            item = self.start_item_for(call)
            self.complete_item(item, status="failed", output=str(exc))
            return ToolOutcome(str(exc), "failed")
        item = self.start_item(
            "handoff",
            agent=handoff.target,
            text=handoff.describe(),
            tool=HANDOFF,
            arguments=call.arguments,
        )
        output = f"{handoff.target} now has the conversation and answers the user."
        self.complete_item(item, output=output)
        log.info("openai.handoff", source=handoff.source, target=handoff.target)
        self.agent = handoff.target
        return ToolOutcome(output)
