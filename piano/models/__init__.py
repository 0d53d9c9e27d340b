"""Models and reasoning effort per conversation: the ``/model`` and ``/effort`` chat commands.

Each conversation may choose, for itself alone, the model its agent answers with and how hard
the model reasons (its reasoning effort), whatever surface it happens on:

- ``/model`` lists the models the agent's provider offers (Codex: its catalogue for the
  provider, ``model/list``; an OpenAI-compatible agent: the server's ``GET /v1/models``) and
  says which one the conversation uses; ``/model NAME`` switches to ``NAME`` and ``/model
  default`` goes back to the agent's configured ``model``. A name the provider does not offer
  is refused with one sentence that lists the ones it does.
- ``/effort`` shows the conversation's effort and the ones its model accepts; ``/effort
  LEVEL`` chooses one of them (codex's catalogue says which per model, e.g. ``low``,
  ``medium``, ``high``, ``xhigh``; when the provider does not say, `EFFORTS`) and ``/effort
  default`` the model's default.

The choice is the conversation actor's (`piano.threads.configure`): kept in the store per
conversation, so it survives restarts and ``/new``, passed with every turn it starts, and
shown by ``/status`` (`piano.threads.ConversationStatus.model` and ``effort``). Switching to a
model that does not accept the chosen effort resets the effort to that model's default, and
says so.
"""

from __future__ import annotations

from typing import Final

from actors import ActorRef
from piano.commands import CommandError, Invocation
from piano.store import ConversationSettings
from piano.threads import (
    THREADS,
    ConversationStatus,
    ModelChoice,
    ModelsUnavailable,
    NotSaved,
    UnknownAgent,
    configure,
    conversation_status,
    list_models,
    open_conversation,
)

__all__ = ["EFFORTS", "effort", "model", "settings_line"]

EFFORTS: Final = ("none", "minimal", "low", "medium", "high", "xhigh")
"""The reasoning efforts accepted when the provider does not say which its model accepts
(codex's and the OpenAI API's levels)."""

DEFAULT: Final = "default"


async def _conversation(invocation: Invocation) -> ActorRef:
    threads = invocation.system.whereis(THREADS)
    if threads is None:
        raise CommandError("The daemon is not ready to take commands yet; try again shortly.")
    try:
        return await open_conversation(threads, invocation.key)
    except UnknownAgent:
        raise CommandError(f"No agent named {invocation.key.agent!r} is configured.") from None


def settings_line(status: ConversationStatus) -> str:
    """The conversation's model and effort, as ``/status`` shows them."""
    return f"model: {status.model or 'the provider default'}, effort: {status.effort or 'default'}"


async def _choices(conversation: ActorRef) -> tuple[ModelChoice, ...]:
    try:
        return await list_models(conversation)
    except ModelsUnavailable as exc:
        raise CommandError(f"{exc}.") from None


def _find(choices: tuple[ModelChoice, ...], name: str | None) -> ModelChoice | None:
    return next((choice for choice in choices if choice.id == name), None)


async def _configure(conversation: ActorRef, settings: ConversationSettings) -> ConversationStatus:
    try:
        return await configure(conversation, settings)
    except NotSaved as exc:
        raise CommandError(f"{exc}.") from None


async def model(invocation: Invocation, argument: str) -> str:
    """``/model``: list the models; ``/model NAME`` switches this conversation to one."""
    conversation = await _conversation(invocation)
    status = await conversation_status(conversation)
    choices = await _choices(conversation)
    if not argument:
        lines = [f"This conversation uses {settings_line(status)}.", "Models offered:"]
        for choice in choices:
            mark = " (current)" if choice.id == status.model else ""
            efforts = f" — efforts: {', '.join(choice.efforts)}" if choice.efforts else ""
            lines.append(f"  {choice.id}{mark}{efforts}")
        lines.append("Switch with /model NAME (or /model default).")
        return "\n".join(lines)
    if argument.lower() == DEFAULT:
        wanted: str | None = None
        chosen = _find(choices, invocation.config.agents[invocation.key.agent].model)
    else:
        chosen = _find(choices, argument)
        if chosen is None:
            offered = ", ".join(choice.id for choice in choices) or "none"
            raise CommandError(f"Unknown model {argument!r}; the provider offers: {offered}.")
        wanted = chosen.id
    effort_now = status.effort
    note = ""
    if chosen is not None and chosen.efforts and effort_now not in (None, *chosen.efforts):
        effort_now = chosen.default_effort
        note = (
            f" It does not accept effort {status.effort}, so the effort is now "
            f"{effort_now or 'its default'}."
        )
    status = await _configure(conversation, ConversationSettings(model=wanted, effort=effort_now))
    return f"This conversation now uses {settings_line(status)}.{note}"


async def effort(invocation: Invocation, argument: str) -> str:
    """``/effort``: show the effort; ``/effort LEVEL`` sets this conversation's."""
    conversation = await _conversation(invocation)
    status = await conversation_status(conversation)
    try:
        current = _find(await list_models(conversation), status.model)
    except ModelsUnavailable:
        current = None
    accepted = current.efforts if current is not None and current.efforts else EFFORTS
    level = argument.lower()
    if not level:
        return (
            f"This conversation uses {settings_line(status)}. "
            f"Efforts {status.model or 'the model'} accepts: {', '.join(accepted)}. "
            "Choose with /effort LEVEL (or /effort default)."
        )
    if level == DEFAULT:
        # Explicitly the model's default: codex keeps a turn's effort for the turns after it.
        chosen = current.default_effort if current is not None else None
    elif level in accepted:
        chosen = level
    else:
        raise CommandError(
            f"Unknown effort {argument!r} for {status.model or 'this model'}; "
            f"it accepts: {', '.join(accepted)}."
        )
    status = await _configure(
        conversation, ConversationSettings(model=status.settings.model, effort=chosen)
    )
    return f"This conversation now uses {settings_line(status)}."
