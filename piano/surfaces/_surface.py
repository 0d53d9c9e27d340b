"""The surface interface: how a chat surface (terminal, Telegram, web) shows a conversation.

A surface is an actor. It subscribes to the threads it shows (`subscribe`), and the events of
those threads arrive in its mailbox in order; `Surface.handle_info` hands each to `on_event`,
whose default turns it into a lifecycle callback with a `Context` (which thread, interaction
and turn). Every callback has a default that does nothing, so a surface implements only what
it shows:

| callback               | when                                                         |
|------------------------|--------------------------------------------------------------|
| `turn_started`         | the agent starts answering a message                         |
| `item_started`         | a step begins: a message, a command, a file change, a tool   |
| `text_delta`           | streamed text of an agent message or reasoning               |
| `item_updated`         | streamed output of a command                                 |
| `item_completed`       | a step ends, with its final content (replaces what streamed) |
| `approval_requested`   | the agent asks to run a command or change files              |
| `approval_withdrawn`   | that request was decided, expired or withdrawn               |
| `turn_completed`       | the answer is complete (or failed, or was interrupted)       |
| `notice`               | retrying, queued, a warning or an error to show the user     |
| `alert`                | an incident told to the owner (`piano.alerts`), any thread   |

Every actor that receives thread events is a `Surface`. One that renders them (Telegram)
implements the callbacks; one that forwards each event whole to its clients (the terminal
chat socket, the web event stream and its server-sent events) overrides `on_event` instead,
so no surface re-implements the delivery. A surface talks back to conversations only through
the client functions of `piano.threads` (`send_message`, `decide`, `interrupt`, ...).

A surface that crashes is restarted by its supervisor without touching the threads: threads
only `send` to it, so they never notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actors import Actor, ActorRef, Registry
from schemas import events as ev
from schemas.alerts import Alert

__all__ = ["ALL_THREADS", "Context", "Surface", "deliver", "subscribe", "unsubscribe"]

ALL_THREADS = "*"
"""Subscribe under this key to receive every thread's events (dashboards)."""


@dataclass(frozen=True, slots=True)
class Context:
    """Where an event belongs."""

    thread_id: str
    interaction_id: str | None
    turn_id: str | None


def deliver(subscriptions: Registry, event: ev.ThreadEvent) -> None:
    """Send `event` to every surface subscribed to its thread, then to those watching all.

    Delivery is a plain send per surface, so a slow or crashed surface never blocks a thread.
    """
    for ref, _ in subscriptions.lookup(event.thread_id):
        ref.send(event)
    for ref, _ in subscriptions.lookup(ALL_THREADS):
        ref.send(event)


def subscribe(subscriptions: Registry, thread_id: str, surface: ActorRef) -> None:
    """Deliver `thread_id`'s events to `surface` (idempotent)."""
    if thread_id not in subscriptions.keys(surface):
        subscriptions.register(thread_id, surface)


def unsubscribe(subscriptions: Registry, thread_id: str, surface: ActorRef) -> None:
    subscriptions.unregister(thread_id, surface)


class Surface(Actor):
    """Base class of surfaces; see the module documentation."""

    def handle_info(self, message: Any) -> Any:
        if isinstance(message, Alert):
            return self.alert(message)
        if not isinstance(message, ev.Event):
            return super().handle_info(message)
        return self.on_event(message)  # type: ignore[arg-type]

    def on_event(self, message: ev.ThreadEvent) -> Any:
        """An event of a subscribed thread (every event of a thread, in order). The default
        calls the lifecycle callback of its kind; a surface that forwards events whole
        overrides this instead."""
        context = Context(message.thread_id, message.interaction_id, message.turn_id)
        match message:
            case ev.TurnStarted():
                return self.turn_started(context, message)
            case ev.ItemStarted():
                return self.item_started(context, message.item)
            case ev.ItemDelta(stream="output"):
                return self.item_updated(context, message)
            case ev.ItemDelta():
                return self.text_delta(context, message)
            case ev.ItemCompleted():
                return self.item_completed(context, message.item)
            case ev.ApprovalRequested():
                return self.approval_requested(context, message)
            case ev.ApprovalResolved():
                return self.approval_withdrawn(context, message)
            case ev.TurnCompleted():
                return self.turn_completed(context, message)
            case ev.Notice():
                return self.notice(context, message)
        return None

    def turn_started(self, context: Context, event: ev.TurnStarted) -> Any:
        return None

    def item_started(self, context: Context, item: ev.Item) -> Any:
        return None

    def text_delta(self, context: Context, event: ev.ItemDelta) -> Any:
        return None

    def item_updated(self, context: Context, event: ev.ItemDelta) -> Any:
        return None

    def item_completed(self, context: Context, item: ev.Item) -> Any:
        return None

    def approval_requested(self, context: Context, event: ev.ApprovalRequested) -> Any:
        return None

    def approval_withdrawn(self, context: Context, event: ev.ApprovalResolved) -> Any:
        return None

    def turn_completed(self, context: Context, event: ev.TurnCompleted) -> Any:
        return None

    def notice(self, context: Context, event: ev.Notice) -> Any:
        return None

    def alert(self, alert: Alert) -> Any:
        """An incident opened or closed, to tell the owner: sent by the `alerts` actor to the
        surfaces in ``[alerts] to``. The default shows nothing."""
        return None
