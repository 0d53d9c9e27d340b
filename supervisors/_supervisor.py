"""Supervisors: start children in order, restart them by strategy, stop them in reverse order.

```python
tree = Supervisor(
    [
        ChildSpec("store", start=lambda: Store(path)),
        ChildSpec("codex", start=lambda: CodexClient(), backoff=Backoff(initial=0.5, cap=30)),
        ChildSpec("threads", start=lambda: DynamicSupervisor(), type="supervisor"),
    ],
    strategy="rest_for_one",
    max_restarts=3,
    max_seconds=5,
)
ref = await system.spawn(tree)
```

The rules are OTP's (see `docs/supervision.md`):

- Start: children start in list order, each `init` completing before the next starts. If one
  fails, those already started are stopped in reverse order and the supervisor's own start fails
  with `ChildStartError` naming the child.
- Strategies: one_for_one restarts only the child that exited; one_for_all stops every other
  child (newest first) and restarts them all in order; rest_for_one stops and restarts the
  children started after it. Which exits call for a restart depends on the child's `restart`.
- Restart intensity: at most `max_restarts` within `max_seconds` (default 3 in 5 s), counted
  per supervisor. `max_seconds` is measured on a float clock (`time.monotonic`), where OTP counts
  whole seconds: a restart 5.9 s old still counts in OTP's 5-second window, not in Piano's. The
  restart that exceeds it makes the supervisor stop all children and exit with ``"shutdown"``,
  so its own supervisor decides (a permanent child is restarted, a transient one is not). A
  restart whose start fails counts too and is retried.
- Shutdown: children stop newest first, each according to its `shutdown` policy.
- auto_shutdown: with ``"any_significant"`` the supervisor stops when a significant child exits
  on its own; with ``"all_significant"`` when the last one has. Exits caused by the supervisor
  (a sibling's restart, `terminate_child`) never count.
- A child's `backoff` delays its restarts; the restart still counts toward intensity when it is
  decided, so a burst of crashes still makes the supervisor give up, while a child whose delays
  outgrow ``max_seconds / max_restarts`` is retried forever at the capped pace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from actors import NOREPLY, ActorRef, Caller, Exit
from supervisors._base import RestartDue, SupervisorBase
from supervisors._children import (
    AlreadyPresent,
    AlreadyStarted,
    Child,
    ChildNotFound,
    ChildStartError,
    Clock,
    Counts,
    SupervisorError,
    log,
    monotonic,
    report_exit,
    should_restart,
    start_child,
    stop_child,
)
from supervisors._spec import ChildSpec, ChildSpecError

__all__ = ["AutoShutdown", "Strategy", "Supervisor"]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one"]
AutoShutdown = Literal["never", "any_significant", "all_significant"]


class Supervisor(SupervisorBase):
    """A static supervisor over an ordered list of child specs."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        auto_shutdown: AutoShutdown = "never",
        clock: Clock = monotonic,
        seed: int | None = None,
    ) -> None:
        if strategy not in ("one_for_one", "one_for_all", "rest_for_one"):
            raise ValueError(
                f"strategy must be one_for_one, one_for_all or rest_for_one, got {strategy!r}"
            )
        if auto_shutdown not in ("never", "any_significant", "all_significant"):
            raise ValueError(
                "auto_shutdown must be never, any_significant or all_significant, "
                f"got {auto_shutdown!r}"
            )
        seen: set[object] = set()
        for spec in children:
            if not isinstance(spec, ChildSpec):
                raise TypeError(f"children must be ChildSpec instances, got {spec!r}")
            if spec.id in seen:
                raise ChildSpecError(
                    spec.id, "id", "duplicate_child_name", spec.id, "duplicate child id"
                )
            seen.add(spec.id)
            self._check_significant(spec, auto_shutdown)
        super().__init__(max_restarts, max_seconds, clock, seed)
        self.strategy = strategy
        self.auto_shutdown = auto_shutdown
        self.children = [Child(spec) for spec in children]

    @staticmethod
    def _check_significant(spec: ChildSpec, auto_shutdown: str) -> None:
        if spec.significant and auto_shutdown == "never":
            raise ChildSpecError(
                spec.id,
                "significant",
                "bad_combination",
                True,
                "significant=True with the supervisor's auto_shutdown='never'; a significant "
                "child needs auto_shutdown any_significant or all_significant",
            )

    def describe(self) -> str:
        """One line for the console's tree and the dashboard."""
        return f"{self.strategy}, {self._describe_intensity()}"

    def records(self) -> list[Child]:
        return self.children

    async def init(self) -> None:
        self.trap_exits = True
        started: list[Child] = []
        for child in self.children:
            try:
                await start_child(self, child, self._clock)
            except ChildStartError:
                for done in reversed(started):
                    await stop_child(self, done)
                raise
            started.append(child)

    async def _stop_all(self) -> None:
        for child in reversed(self.children):
            await stop_child(self, child)

    # -- operations (called through the functions in supervisors._ops) -------------------------

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        try:
            match message:
                case ("start_child", ChildSpec() as spec):
                    return await self._start_new(spec)
                case ("terminate_child", child_id):
                    await self._terminate_child(self._find(child_id))
                    return None
                case ("restart_child", child_id):
                    return await self._restart_child(self._find(child_id))
                case ("delete_child", child_id):
                    self._delete_child(self._find(child_id))
                    return None
                case "which_children":
                    return [child.info() for child in reversed(self.children)]
                case "count_children":
                    return self._count()
        except (SupervisorError, ChildSpecError, ChildStartError) as exc:
            caller.fail(exc)
            return NOREPLY
        return await super().handle_call(message, caller)

    def _find(self, child_id: object) -> Child:
        for child in self.children:
            if child.spec.id == child_id:
                return child
        raise ChildNotFound(child_id, f"no child with id {child_id!r}")

    async def _start_new(self, spec: ChildSpec) -> ActorRef | None:
        existing = next((child for child in self.children if child.spec.id == spec.id), None)
        if existing is not None:
            if existing.ref is not None:
                raise AlreadyStarted(spec.id, existing.ref)
            existing.refuse_if_active()
            raise AlreadyPresent(spec.id, f"a child with id {spec.id!r} is already present")
        self._check_significant(spec, self.auto_shutdown)
        child = Child(spec)
        ref = await start_child(self, child, self._clock, report=False)
        self.children.append(child)
        return ref

    async def _terminate_child(self, child: Child) -> None:
        await stop_child(self, child)
        if child.spec.restart == "temporary":
            self.children.remove(child)

    async def _restart_child(self, child: Child) -> ActorRef | None:
        child.refuse_if_active()
        return await start_child(self, child, self._clock, report=False)

    def _delete_child(self, child: Child) -> None:
        child.refuse_if_active()
        self.children.remove(child)

    def _count(self) -> Counts:
        return Counts(
            specs=len(self.children),
            active=sum(1 for child in self.children if child.ref is not None),
            supervisors=sum(1 for child in self.children if child.spec.type == "supervisor"),
            workers=sum(1 for child in self.children if child.spec.type == "worker"),
        )

    # -- exits and restarts ---------------------------------------------------------------------

    async def handle_info(self, message: Any) -> None:
        match message:
            case Exit(sender, reason):
                child = next((c for c in self.children if c.ref == sender), None)
                if child is not None:
                    await self._child_exited(child, reason)
            case RestartDue(child, token) if child.token == token and child in self.children:
                child.pending = None
                await self._apply_strategy(child)
            case _:
                await super().handle_info(message)

    async def _child_exited(self, child: Child, reason: object) -> None:
        child.ref = None
        report_exit(self, child, reason)
        spec = child.spec
        restart = should_restart(spec, reason)
        if spec.restart == "temporary":
            self.children.remove(child)
        if spec.significant and not restart and self.auto_shutdown != "never":
            others_alive = any(c.spec.significant and c.ref is not None for c in self.children)
            if self.auto_shutdown == "any_significant" or not others_alive:
                log.info("supervisor.auto_shutdown", supervisor=repr(self.ref), child=spec.id)
                await self._give_up()
                return
        if restart:
            await self._restart(child)

    def _group(self, child: Child) -> list[Child]:
        if self.strategy == "one_for_one":
            return [child]
        if self.strategy == "one_for_all":
            return list(self.children)
        return self.children[self.children.index(child) :]

    async def _apply_strategy(self, child: Child) -> None:
        group = self._group(child)
        for other in reversed(group):
            if other is child:
                continue
            running = other.ref is not None
            await stop_child(self, other)
            if running and other.spec.restart == "temporary":
                self.children.remove(other)
        started: list[Child] = []
        for member in group:
            if member not in self.children:
                continue
            try:
                await start_child(self, member, self._clock)
            except ChildStartError:
                for done in reversed(started):
                    await stop_child(self, done)
                await self._restart(child, retry=True)
                return
            started.append(member)
