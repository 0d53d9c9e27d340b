"""What a snapshot shows: each thread's recent interactions and open approvals, kept from events.

The web surface applies every thread event it receives to `ThreadViews`, so it can give a new
or reconnecting client the current state of a thread without the store: the interactions
(with their items' text and output as streamed so far), whether a turn is running, and the
approvals still waiting for a decision. Memory is bounded: the least recently active threads
and the oldest interactions of a thread are forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import msgspec

from schemas import events as ev
from schemas.stream import ALL_THREADS, InteractionState, ThreadState

__all__ = ["ThreadViews"]


class ThreadViews:
    """Per-thread state built from events; see the module documentation."""

    def __init__(self, max_threads: int, max_interactions: int) -> None:
        self.max_threads = max_threads
        self.max_interactions = max_interactions
        self.threads: OrderedDict[str, ThreadState] = OrderedDict()

    def running(self) -> int:
        """How many threads have a turn running."""
        return sum(state.running for state in self.threads.values())

    def thread(self, thread_id: str) -> ThreadState:
        state = self.threads.get(thread_id)
        if state is None:
            state = self.threads[thread_id] = ThreadState(thread_id=thread_id)
            while len(self.threads) > self.max_threads:
                self.threads.popitem(last=False)
        else:
            self.threads.move_to_end(thread_id)
        return state

    def name(self, thread_id: str, surface: str, conversation: str, agent: str) -> None:
        """Record which conversation a thread is (events do not say)."""
        state = self.thread(thread_id)
        state.surface, state.conversation, state.agent = surface, conversation, agent

    def snapshot(self, thread_ids: Iterable[str]) -> list[ThreadState]:
        """The state of these threads (``"*"``: all), most recently active first."""
        wanted = set(thread_ids)
        states = reversed(self.threads.values())
        if ALL_THREADS in wanted:
            return list(states)
        return [state for state in states if state.thread_id in wanted]

    def apply(self, event: ev.ThreadEvent) -> None:
        state = self.thread(event.thread_id)
        state.updated_at = max(state.updated_at, event.at)
        match event:
            case ev.TurnStarted(interaction=interaction, agent=agent):
                found = self._interaction(state, interaction.id)
                found.text, found.user, found.agent = interaction.text, interaction.user, agent
                found.status, found.turn_id = "running", event.turn_id
                found.started_at, found.completed_at = event.at, None
                state.running = True
            case ev.ItemStarted(item=item) | ev.ItemCompleted(item=item):
                items = self._interaction(state, event.interaction_id).items
                copy = msgspec.structs.replace(item)
                for index in range(len(items) - 1, -1, -1):
                    if items[index].id == item.id:
                        items[index] = copy
                        break
                else:
                    items.append(copy)
            case ev.ItemDelta(item_id=item_id, stream=stream, delta=delta):
                items = self._interaction(state, event.interaction_id).items
                for index in range(len(items) - 1, -1, -1):
                    if items[index].id == item_id:
                        field = "output" if stream == "output" else "text"
                        grown = getattr(items[index], field) + delta
                        items[index] = msgspec.structs.replace(items[index], **{field: grown})
                        break
            case ev.TurnCompleted():
                found = self._interaction(state, event.interaction_id)
                found.status, found.response, found.error = (
                    event.status,
                    event.response,
                    event.error,
                )
                found.completed_at = event.at
                state.running = False
            case ev.ApprovalRequested():
                state.approvals.append(event)
            case ev.ApprovalResolved(approval_id=approval_id):
                state.approvals = [a for a in state.approvals if a.approval_id != approval_id]

    def _interaction(self, state: ThreadState, interaction_id: str | None) -> InteractionState:
        key = interaction_id or "?"
        for interaction in reversed(state.interactions):
            if interaction.id == key:
                return interaction
        interaction = InteractionState(id=key, text="")
        state.interactions.append(interaction)
        del state.interactions[: -self.max_interactions]
        return interaction
