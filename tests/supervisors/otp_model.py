"""A reference model of OTP's supervisor rules: small, synchronous and obviously correct.

It tracks which workers are alive and the exact sequence of ``("start", name)`` and
``("stop", name)`` events (a stop is a worker's `terminate` running) that the rules imply for
each exit, for trees of supervisors whose workers trap exits. Start failures are not modelled
(focused tests cover them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NORMAL_REASONS = ("normal", "shutdown")


@dataclass
class Spec:
    name: str
    restart: str  # permanent | transient | temporary
    children: list[Spec] | None = None  # None: a worker
    strategy: str = "one_for_one"
    max_restarts: int = 3
    max_seconds: float = 5.0


@dataclass
class Node:
    spec: Spec
    alive: bool = False
    children: list[Node] = field(default_factory=list)
    stamps: list[float] = field(default_factory=list)

    @property
    def is_supervisor(self) -> bool:
        return self.spec.children is not None


class Model:
    def __init__(self, top: Spec) -> None:
        self.now = 0.0
        self.events: list[tuple[str, str]] = []
        self.top = Node(top)
        self._start(self.top)

    # -- queries ------------------------------------------------------------------------------

    def live_workers(self) -> set[str]:
        return {n.spec.name for n in self._walk(self.top) if n.alive and not n.is_supervisor}

    def live_supervisors(self) -> set[str]:
        return {n.spec.name for n in self._walk(self.top) if n.alive and n.is_supervisor}

    def _walk(self, node: Node) -> list[Node]:
        nodes = [node]
        for child in node.children:
            nodes.extend(self._walk(child))
        return nodes

    def parent_of(self, name: str) -> tuple[Node, Node]:
        for node in self._walk(self.top):
            for child in node.children:
                if child.spec.name == name:
                    return node, child
        raise KeyError(name)

    # -- what happens ---------------------------------------------------------------------------

    def worker_exits(self, name: str, reason: str, runs_terminate: bool) -> None:
        """A live worker exits by itself (crash, stop) or is killed."""
        sup, child = self.parent_of(name)
        if runs_terminate:
            self.events.append(("stop", name))
        child.alive = False
        self._child_exited(sup, child, reason)

    def _child_exited(self, sup: Node, child: Node, reason: str) -> None:
        if child.spec.restart == "temporary":
            sup.children.remove(child)
        restart = child.spec.restart == "permanent" or (
            child.spec.restart == "transient" and reason not in NORMAL_REASONS
        )
        if restart:
            self._restart(sup, child)

    def _restart(self, sup: Node, child: Node) -> None:
        sup.stamps.append(self.now)
        sup.stamps = [t for t in sup.stamps if t >= self.now - sup.spec.max_seconds]
        if len(sup.stamps) > sup.spec.max_restarts:
            self._give_up(sup)
            return
        if sup.spec.strategy == "one_for_one":
            group = [child]
        elif sup.spec.strategy == "one_for_all":
            group = list(sup.children)
        else:
            group = sup.children[sup.children.index(child) :]
        for other in reversed(group):
            if other is child or not other.alive:
                continue
            self._stop(other)
            if other.spec.restart == "temporary":
                sup.children.remove(other)
        for member in group:
            if member in sup.children:
                self._start(member)

    def _give_up(self, sup: Node) -> None:
        for child in reversed(sup.children):
            if child.alive:
                self._stop(child)
        sup.children = [c for c in sup.children if c.spec.restart != "temporary"]
        sup.alive = False
        if sup is self.top:
            return
        parent, node = self.parent_of(sup.spec.name)
        self._child_exited(parent, node, "shutdown")

    def _stop(self, node: Node) -> None:
        if node.is_supervisor:
            for child in reversed(node.children):
                if child.alive:
                    self._stop(child)
        else:
            self.events.append(("stop", node.spec.name))
        node.alive = False

    def _start(self, node: Node) -> None:
        node.alive = True
        if node.is_supervisor:
            assert node.spec.children is not None
            node.children = [Node(spec) for spec in node.spec.children]
            node.stamps = []
            for child in node.children:
                self._start(child)
        else:
            self.events.append(("start", node.spec.name))
