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
import re
import time
from collections import deque
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import msgspec

from actors import ActorRef, ActorSystem, describe, get_state, info, redact, statistics
from actors.pipeline import PipelineStatistics
from piano.codex import CODEX
from piano.events import EVENTS
from piano.threads import THREAD_SUPERVISOR, THREADS, which_conversations
from schemas.stream import (
    Activity,
    ActorNode,
    Dashboard,
    ErrorEntry,
    StreamStats,
    ThreadSummary,
)
from supervisors import ChildInfo

__all__ = ["RECENT_ERRORS", "Observer", "clean_line", "group_errors", "record_errors"]

CALL_TIMEOUT = 1.0
_LINE_LIMIT = 160
_STATE_VALUE_LIMIT = 400
RATE_WINDOW = 10.0
"""Seconds a message rate is averaged over (a dashboard frame can come every 0.2 s)."""

RECENT_ERRORS: deque[ErrorEntry] = deque(maxlen=50)
"""The latest warnings and errors logged through `record_errors` (newest last)."""


_WHAT = ("error", "reason", "why", "exit_reason", "message", "exception", "exc_info", "line")
_WHO = ("child", "name", "actor", "thread", "agent", "surface", "client", "path")
_DIGITS = re.compile(r"\d+")
_EXCEPTION_REPR = re.compile(r"^[A-Za-z_][\w.]*\(['\"](.*?)(?:['\"]\))?$", re.DOTALL)
_STDERR_TAIL = re.compile(r"[;:,]?\s*(?:stderr|\\n).*$")
_LOG_PREFIX = re.compile(
    r"^\d{4}-\d\d-\d\dT[\d:.]+Z?\s+(?:ERROR|WARN|WARNING|INFO|DEBUG|TRACE)?\s*(?:[\w:]+:\s)?"
)
"""A timestamp, a level and a module path a child process put before its message."""
_LINE = re.compile(r"^(\S+)(?: \[([^\]]+)\])?(?:: (.*))?$", re.DOTALL)
_CRASH = ("actor.crashed", "supervisor.child_terminated", "supervisor.child_restarted")
_BURST = 2.0
_INCIDENT_WINDOW = 5.0
"""Seconds within which one child's crash, termination and restart are one incident."""


def _incidents(entries: list[ErrorEntry]) -> list[ErrorEntry]:
    """One child's crash report, its supervisor's termination report and the restart the
    observer saw, folded into one entry "<child> crashed: <why>" (the first reason given)."""
    folded: list[ErrorEntry] = []
    open_: dict[str, ErrorEntry] = {}
    for entry in entries:
        match = _LINE.match(entry.line) if entry.event in _CRASH else None
        if match is None or not match[2]:
            folded.append(entry)
            continue
        who, what = match[2], match[3] or ""
        incident = open_.get(who)
        if incident is not None and entry.ts - incident.ts <= _INCIDENT_WINDOW:
            if incident.line.endswith(" crashed") and what:
                incident.line = f"{incident.line}: {what}"
            incident.ts = entry.ts
            continue
        incident = ErrorEntry(
            ts=entry.ts,
            level="error",
            event="crashed",
            detail=entry.detail,
            line=f"{who} crashed" + (f": {what}" if what else ""),
            first_ts=entry.first_ts or entry.ts,
        )
        open_[who] = incident
        folded.append(incident)
    return folded


def clean_line(event: str, fields: Mapping[str, Any]) -> str:
    """One short line for a logged warning: the event, who it is about and the first line of
    what went wrong, without tracebacks or the start-up text a crash report carries."""
    who = next((str(fields[key]) for key in _WHO if fields.get(key) not in (None, "")), "")
    what = ""
    for key in _WHAT:
        value = fields.get(key)
        if value not in (None, "", True, False):
            text = str(value)
            text = _EXCEPTION_REPR.sub(r"\1", text)
            what = next((line.strip() for line in text.splitlines() if line.strip()), "")
            what = _STDERR_TAIL.sub("", _LOG_PREFIX.sub("", what))
            break
    who = who.rsplit("/", 1)[-1]
    line = event + (f" [{who}]" if who else "") + (f": {what}" if what else "")
    return line if len(line) <= _LINE_LIMIT else line[: _LINE_LIMIT - 1] + "…"


def group_errors(entries: Iterable[ErrorEntry]) -> list[ErrorEntry]:
    """Repeats as one entry with their count, first and latest time, ordered by latest (newest
    last): entries with the same level and line (numbers aside), and bursts (the same event
    about the same subject within `_BURST` seconds, like the lines codex writes to stderr as
    it starts). A child's crash is one entry, not its crash report, termination and restart
    (`_incidents`)."""
    groups: dict[tuple[str, str], ErrorEntry] = {}
    bursts: dict[tuple[str, str, str], tuple[tuple[str, str], ErrorEntry]] = {}
    ordered = [
        entry if entry.line else msgspec.structs.replace(entry, line=clean_line(entry.event, {}))
        for entry in sorted(entries, key=lambda e: e.ts)
    ]
    for entry in _incidents(ordered):
        match = _LINE.match(entry.line)
        burst = (entry.level, entry.event, (match[2] if match else None) or "")
        key = (entry.level, _DIGITS.sub("#", entry.line))
        recent = bursts.get(burst)
        if recent is not None and entry.ts - recent[1].ts <= _BURST and recent[0] in groups:
            key = recent[0]
        found = groups.pop(key, None)
        if found is None:
            found = msgspec.structs.replace(entry, count=0, first_ts=entry.first_ts or entry.ts)
        found.count += entry.count
        found.ts = entry.ts
        groups[key] = found  # re-inserted: the dict stays ordered by latest
        bursts[burst] = (key, found)
    return list(groups.values())


def record_errors(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: remember warnings and errors for the dashboard; passes all on."""
    if method_name in ("warning", "error", "critical", "exception"):
        event = str(event_dict.get("event", ""))
        detail = ", ".join(
            f"{key}={value}"
            for key, value in event_dict.items()
            if key not in ("event", "timestamp", "level")
        )
        RECENT_ERRORS.append(
            ErrorEntry(
                ts=time.time(),
                level="error" if method_name == "exception" else method_name,
                event=event,
                detail=detail[:500],
                line=clean_line(event, event_dict),
            )
        )
    return event_dict


def _short(text: str) -> str:
    return text if len(text) <= _STATE_VALUE_LIMIT else text[: _STATE_VALUE_LIMIT - 1] + "…"


def _statistics(ref: ActorRef) -> Any:
    """The actor's statistics snapshot as JSON values (a dataclass or struct becomes an
    object); one that does not convert is shown by its repr, cut like a state value."""
    snapshot = statistics(ref)
    if snapshot is None:
        return None
    try:
        return msgspec.to_builtins(snapshot)
    except (TypeError, ValueError):
        return {"<unconvertible>": _short(repr(snapshot))}


def _peer(ref: ActorRef) -> dict[str, Any]:
    facts = info(ref)
    return {"actor_id": ref.id, "name": facts.name, "actor_class": facts.actor_class}


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
        description=describe(ref),
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
        self._handled: dict[int, deque[tuple[float, int]]] = {}
        """Per actor, (when, messages handled) samples of the last `RATE_WINDOW` seconds."""
        self._rates: dict[int, float] = {}
        self._where: dict[int, tuple[str, int]] = {}

    async def collect(self, stream: StreamStats, activity: Activity | None = None) -> Dashboard:
        """The snapshot, every registered secret scrubbed from it (`actors.redact`): actors'
        descriptions, exit reasons and logged errors are free text."""
        dashboard = await self._collect(stream, activity or Activity())
        return msgspec.json.decode(redact(msgspec.json.encode(dashboard).decode()), type=Dashboard)

    async def actor(self, actor_id: int) -> dict[str, Any] | None:
        """One live actor as ``:observer`` shows it on click, or None if there is none: its
        facts, its state through its `format_status` (each value's repr, cut at 400
        characters), its `statistics()` as `actors.statistics` reads them (a supervisor's
        `SupervisorStatistics`, a pipeline's `PipelineStatistics`; None if it keeps none), its
        links and monitors, its message rate and its supervisor's restart count as of the last
        dashboard. Secrets are scrubbed from all of it."""
        ref = next((r for r in self.system.processes() if r.id == actor_id), None)
        if ref is None:
            return None
        facts = info(ref)
        try:
            raw = await get_state(ref, timeout=CALL_TIMEOUT)
            state = {key: _short(repr(value)) for key, value in raw.items()}
        except Exception as exc:
            state = {"<unavailable>": _short(repr(exc))}
        where = self._where.get(actor_id)
        view = {
            "actor_id": actor_id,
            "name": facts.name,
            "actor_class": facts.actor_class,
            "status": facts.status,
            "mailbox_length": facts.mailbox_length,
            "messages_handled": facts.messages_handled,
            "rate": self._rates.get(actor_id, 0.0),
            "restarts": where[1] if where else 0,
            "path": where[0] if where else None,
            "trap_exits": facts.trap_exits,
            "parent": _peer(facts.parent) if facts.parent else None,
            "links": [_peer(r) for r in facts.links],
            "monitors": [_peer(r) for r in facts.monitors],
            "monitored_by": [_peer(r) for r in facts.monitored_by],
            "description": describe(ref),
            "state": state,
            "statistics": _statistics(ref),
        }
        redacted: dict[str, Any] = msgspec.json.decode(redact(msgspec.json.encode(view).decode()))
        return redacted

    def _rate(self, nodes: list[ActorNode], path: str, now: float) -> None:
        """Fill in each node's message rate (over the last `RATE_WINDOW`) and remember where
        each actor sits in the tree, for `actor`."""
        for node in nodes:
            where = f"{path}/{node.child_id}" if path else node.child_id
            if node.actor_id is not None:
                samples = self._handled.setdefault(node.actor_id, deque())
                while samples and now - samples[0][0] > RATE_WINDOW:
                    samples.popleft()
                if samples and now > samples[0][0]:
                    since, handled = samples[0]
                    node.rate = round((node.messages_handled - handled) / (now - since), 1)
                samples.append((now, node.messages_handled))
                self._rates[node.actor_id] = node.rate
                self._where[node.actor_id] = (where, node.restarts)
            self._rate(node.children, where, now)

    async def _collect(self, stream: StreamStats, activity: Activity) -> Dashboard:
        tree: list[ActorNode] = []
        root = self.system.whereis(self.root)
        if root is not None:
            node = _node(root, self.root, "supervisor", "permanent", 0)
            node.children = await self._children(root, self.root)
            tree.append(node)
        pipeline = self._pipeline()
        stats = self.system.statistics()
        errors = group_errors([*RECENT_ERRORS, *self.errors])[-30:]
        now = time.monotonic()
        live = {r.id for r in self.system.processes()}
        for gone in [i for i in self._handled if i not in live]:
            self._handled.pop(gone, None)
            self._rates.pop(gone, None)
            self._where.pop(gone, None)
        self._rate(tree, "", now)
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
            activity=activity,
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
        stats = statistics(ref, PipelineStatistics)
        if stats is None:
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
        event = "supervisor.child_restarted"
        self.errors.append(
            ErrorEntry(
                ts=time.time(),
                level="warning",
                event=event,
                detail=f"{where} (restart {restarts}): #{old.ref.id} exited with "
                f"{old.exit_reason!r}"[:500],
                line=clean_line(event, {"child": where, "reason": repr(old.exit_reason)}),
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
                    description=describe(row.ref),
                )
            )
        return summaries
