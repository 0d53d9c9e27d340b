"""The live dashboard: the runtime at one moment, like Erlang's observer.

`Observer.collect()` walks the supervision tree from the application's top supervisor with
`supervisors.which_children`, and describes each child with `actors.info` (status, mailbox
length, messages handled), its supervisor's restart count and its `describe()` line. It adds the
Codex client, the live conversation threads, the event pipeline's counters (the pipeline
registered as `piano.events.EVENTS`), the stream's own statistics and recent errors.

Recent errors come from two places: `record_errors`, a structlog processor the daemon puts in
its chain (it keeps warnings and errors in a small ring, `RECENT_ERRORS`), and the observer
itself, which notes every restart it sees between two snapshots with the old actor's exit
reason. Secrets are scrubbed from the snapshot (`actors.redact`). The walk only reads: a
supervisor that does not answer within a second is shown without children rather than holding up
the dashboard.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import MutableMapping
from typing import Any

import msgspec

from actors import ActorRef, ActorSystem, info, redact
from actors.pipeline import statistics as pipeline_statistics
from piano.codex import CODEX
from piano.events import EVENTS
from piano.threads import THREAD_SUPERVISOR, THREADS, which_conversations
from schemas.stream import ActorNode, Dashboard, ErrorEntry, StreamStats, ThreadSummary
from supervisors import ChildInfo

__all__ = ["RECENT_ERRORS", "Observer", "record_errors"]

CALL_TIMEOUT = 1.0
_DESCRIPTION_LIMIT = 160

RECENT_ERRORS: deque[ErrorEntry] = deque(maxlen=50)
"""The latest warnings and errors logged through `record_errors` (newest last)."""


def record_errors(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: remember warnings and errors for the dashboard; passes all on."""
    if method_name in ("warning", "error", "critical", "exception"):
        detail = ", ".join(
            f"{key}={value}"
            for key, value in event_dict.items()
            if key not in ("event", "timestamp", "level")
        )
        RECENT_ERRORS.append(
            ErrorEntry(
                ts=time.time(),
                level="error" if method_name == "exception" else method_name,
                event=str(event_dict.get("event", "")),
                detail=detail[:500],
            )
        )
    return event_dict


def _describe(ref: ActorRef) -> str | None:
    describe = getattr(ref._actor, "describe", None)
    if not callable(describe):
        return None
    try:
        text = str(describe()).strip()
    except Exception as exc:
        return f"describe() failed: {exc!r}"
    return text.splitlines()[0][:_DESCRIPTION_LIMIT] if text else None


def _node(ref: ActorRef, child_id: str, kind: str, restart: str, restarts: int) -> ActorNode:
    facts = info(ref)
    return ActorNode(
        child_id=child_id,
        actor_id=ref.id,
        name=facts.name,
        actor_class=facts.actor_class,
        kind="supervisor" if kind == "supervisor" else "worker",
        restart=restart,
        status=facts.status,
        mailbox_length=facts.mailbox_length,
        messages_handled=facts.messages_handled,
        restarts=restarts,
        description=_describe(ref),
    )


def _label(child_id: object) -> str:
    if isinstance(child_id, tuple):
        return ":".join(str(part) for part in child_id)
    return str(child_id)


class Observer:
    """Collects `Dashboard`s; keeps what it needs to notice restarts between two of them."""

    def __init__(
        self,
        system: ActorSystem,
        root: str,
        *,
        codex: str = CODEX,
        threads: str = THREADS,
        thread_supervisor: str = THREAD_SUPERVISOR,
        pipeline: str = EVENTS,
    ) -> None:
        self.system = system
        self.root = root
        self.codex = codex
        self.threads = threads
        self.thread_supervisor = thread_supervisor
        self.pipeline = pipeline
        self.errors: deque[ErrorEntry] = deque(maxlen=50)
        self._seen: dict[str, tuple[ActorRef, int]] = {}

    async def collect(self, stream: StreamStats) -> Dashboard:
        """The snapshot, every registered secret scrubbed from it (`actors.redact`): actors'
        descriptions, exit reasons and logged errors are free text."""
        dashboard = await self._collect(stream)
        return msgspec.json.decode(redact(msgspec.json.encode(dashboard).decode()), type=Dashboard)

    async def _collect(self, stream: StreamStats) -> Dashboard:
        tree: list[ActorNode] = []
        root = self.system.whereis(self.root)
        if root is not None:
            node = _node(root, self.root, "supervisor", "permanent", 0)
            node.children = await self._children(root, self.root)
            tree.append(node)
        pipeline = self._pipeline()
        stats = self.system.statistics()
        errors = sorted([*RECENT_ERRORS, *self.errors], key=lambda e: e.ts)[-30:]
        return Dashboard(
            ts=time.time(),
            tree=tree,
            system={
                "alive": stats.alive,
                "spawned": stats.spawned,
                "exited": stats.exited,
                "names": stats.names,
            },
            stream=stream,
            codex=self._codex(tree),
            threads=await self._threads(),
            errors=errors,
            pipeline=pipeline,
        )

    def _codex(self, tree: list[ActorNode]) -> list[ActorNode]:
        """The Codex client's node as the tree shows it (with its restarts), found by name.

        While a restarted client runs its init it already has its name, but its supervisor's
        row still shows the child as restarting, with no actor: the panel then shows the new
        actor with the restarts that row counts, never a count of its own."""
        nodes = list(tree)
        restarts = 0
        while nodes:
            node = nodes.pop()
            if node.name == self.codex and node.actor_id is not None:
                return [node]
            if node.child_id == self.codex:
                restarts = node.restarts
            nodes.extend(node.children)
        codex = self.system.whereis(self.codex)
        return [_node(codex, self.codex, "worker", "permanent", restarts)] if codex else []

    def _pipeline(self) -> dict[str, float]:
        """The event pipeline's counters, flattened (empty when it is not running)."""
        ref = self.system.whereis(self.pipeline)
        if ref is None:
            return {}
        try:
            stats = pipeline_statistics(ref)
        except Exception:
            return {}
        flat: dict[str, float] = {
            "accepted": stats.accepted,
            "acked": stats.acked,
            "failed": stats.failed,
            "in_flight": stats.in_flight,
            "max_in_flight": stats.max_in_flight,
        }
        for stage in stats.stages:
            name = f"{stage.stage}[{stage.index}]"
            flat[f"{name}.handled"] = stage.handled
            flat[f"{name}.queued"] = stage.queued
            flat[f"{name}.latency_mean_ms"] = round(stage.latency_mean * 1000, 3)
        return flat

    async def _children(self, supervisor: ActorRef, path: str) -> list[ActorNode]:
        try:
            rows: list[ChildInfo] = await supervisor.call("which_children", timeout=CALL_TIMEOUT)
        except Exception:
            return []
        nodes = []
        for row in reversed(rows):
            label = _label(row.id)
            where = f"{path}/{label}"
            if row.ref is None:
                nodes.append(
                    ActorNode(
                        child_id=label,
                        actor_id=None,
                        name=None,
                        actor_class="",
                        kind="supervisor" if row.type == "supervisor" else "worker",
                        restart=row.restart,
                        status="not running",
                        restarts=row.restarts,
                    )
                )
                continue
            self._note_restart(where, row.ref, row.restarts)
            node = _node(row.ref, label, row.type, row.restart, row.restarts)
            if row.type == "supervisor":
                node.children = await self._children(row.ref, where)
            nodes.append(node)
        return nodes

    def _note_restart(self, where: str, ref: ActorRef, restarts: int) -> None:
        before = self._seen.get(where)
        self._seen[where] = (ref, restarts)
        if before is None or before[0] == ref:
            return
        old = info(before[0])
        self.errors.append(
            ErrorEntry(
                ts=time.time(),
                level="warning",
                event="supervisor.child_restarted",
                detail=f"{where} (restart {restarts}): #{old.ref.id} exited with "
                f"{old.exit_reason!r}"[:500],
            )
        )

    async def _threads(self) -> list[ThreadSummary]:
        supervisor = self.system.whereis(self.thread_supervisor)
        threads = self.system.whereis(self.threads)
        if supervisor is None or threads is None:
            return []
        try:
            rows: list[ChildInfo] = await supervisor.call("which_children", timeout=CALL_TIMEOUT)
            async with asyncio.timeout(CALL_TIMEOUT):  # a snapshot does not wait on a busy router
                live = await which_conversations(threads)
        except Exception:
            return []
        keys = {ref: key for key, ref in live.items()}
        summaries = []
        for row in reversed(rows):
            if row.ref is None:
                continue
            key = keys.get(row.ref)
            facts = info(row.ref)
            thread_id = row.id[1] if isinstance(row.id, tuple) and len(row.id) == 2 else row.id
            summaries.append(
                ThreadSummary(
                    thread_id=str(thread_id),
                    surface=getattr(key, "surface", "?"),
                    conversation=getattr(key, "conversation", "?"),
                    agent=getattr(key, "agent", "?"),
                    actor_id=row.ref.id,
                    status=facts.status,
                    mailbox_length=facts.mailbox_length,
                    description=_describe(row.ref),
                )
            )
        return summaries
