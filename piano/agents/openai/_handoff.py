"""Handoffs: an agent passes the conversation to another agent, which answers from then on.

An agent whose ``handoffs`` option lists targets gets a ``handoff`` tool whose ``agent``
parameter is an enum of exactly those names. When the model calls it, the thread's active
agent changes at once: the next model round of the same turn runs with the target's model,
instructions and tools, and sees the whole conversation (the history is the thread's, not
an agent's). The change is visible and stored: an item of kind ``handoff`` whose ``agent`` is
the target (``text`` says from whom and why), every later item carries the target's name, the
next turns start as the target (`TurnStarted.agent`), and the history keeps the active agent
so it survives the thread stopping. A call naming an agent not in the list changes nothing
and tells the model which names it may use.
"""

from __future__ import annotations

from dataclasses import dataclass

from piano.agents.openai._history import ToolCall
from piano.agents.openai._tools import ToolSpec, parse_arguments

__all__ = ["HANDOFF", "Handoff", "handoff_spec", "parse_handoff"]

HANDOFF = "handoff"


def handoff_spec(current: str, targets: list[str]) -> ToolSpec:
    """The ``handoff`` tool of an agent that may hand over to `targets`."""
    return ToolSpec(
        HANDOFF,
        f"You are the agent {current!r}. Hand this conversation to another agent when it is "
        f"better placed to answer: {', '.join(targets)}. It sees the whole conversation and "
        "answers the user from then on; say in `reason` what it should do.",
        {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "enum": list(targets)},
                "reason": {"type": "string"},
            },
            "required": ["agent"],
        },
    )


@dataclass(frozen=True, slots=True)
class Handoff:
    source: str
    target: str
    reason: str

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"{self.source} handed the conversation to {self.target}{why}"


def parse_handoff(call: ToolCall, current: str, targets: list[str]) -> Handoff:
    """The handoff a call asks for; `ValueError` (the model's message) if it names no target."""
    arguments = parse_arguments(call)
    target = str(arguments.get("agent", ""))
    if target not in targets:
        raise ValueError(
            f"cannot hand off to {target!r}: the agents you may hand off to are "
            f"{', '.join(targets) or 'none'}"
        )
    return Handoff(current, target, str(arguments.get("reason") or ""))
