"""Real supervision trees behave exactly like the reference model of OTP's rules.

Hypothesis builds nested trees (all three strategies, all restart types, random intensity),
then applies random crashes, normal and shutdown exits, kills, and passing time. After every
step the live tree must match the model: which workers are alive, the exact order in which
workers were started and stopped, and which supervisors gave up (and how that escalated).
The intensity window runs on a clock the test moves, so nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from actors import Actor, ActorError, ActorRef, ActorSystem, Caller
from supervisors import ChildSpec, Supervisor, which_children
from tests.supervisors.conftest import FakeClock
from tests.supervisors.otp_model import Model, Spec


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.live: dict[str, ActorRef] = {}


class ModelWorker(Actor):
    def __init__(self, name: str, recorder: Recorder) -> None:
        self.name = name
        self.recorder = recorder

    async def init(self) -> None:
        self.trap_exits = True
        self.recorder.events.append(("start", self.name))
        self.recorder.live[self.name] = self.ref

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "crash":
                raise RuntimeError(f"{self.name} crashed")
            case ("exit", reason):
                self.stop(reason)
                return None
        return await super().handle_call(message, caller)

    def handle_info(self, message: Any) -> None:
        pass

    def terminate(self, reason: object) -> None:
        self.recorder.events.append(("stop", self.name))


def build(spec: Spec, recorder: Recorder, clock: FakeClock) -> Actor:
    if spec.children is None:
        return ModelWorker(spec.name, recorder)
    children = [
        ChildSpec(
            child.name,
            start=functools.partial(build, child, recorder, clock),
            restart=child.restart,  # type: ignore[arg-type]
            type="worker" if child.children is None else "supervisor",
        )
        for child in spec.children
    ]
    return Supervisor(
        children,
        strategy=spec.strategy,  # type: ignore[arg-type]
        max_restarts=spec.max_restarts,
        max_seconds=spec.max_seconds,
        clock=clock,
    )


STRATEGIES = st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])


@st.composite
def trees(draw: st.DrawFn) -> Spec:
    counter = iter(range(1000))

    def worker() -> Spec:
        restart = draw(st.sampled_from(["permanent", "transient", "temporary"]))
        return Spec(f"w{next(counter)}", restart)

    def supervisor(depth: int, restart: str) -> Spec:
        children = []
        for _ in range(draw(st.integers(1, 3))):
            if depth < 2 and draw(st.booleans()):
                children.append(
                    supervisor(depth + 1, draw(st.sampled_from(["permanent", "transient"])))
                )
            else:
                children.append(worker())
        return Spec(
            f"s{next(counter)}",
            restart,
            children=children,
            strategy=draw(STRATEGIES),
            max_restarts=draw(st.integers(0, 3)),
            max_seconds=draw(st.sampled_from([1.0, 5.0, 10.0])),
        )

    return supervisor(0, "permanent")


class SupervisionMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.system = ActorSystem()
        self.clock = FakeClock()
        self.recorder = Recorder()
        self.model: Model | None = None
        self.top: ActorRef | None = None

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    @initialize(tree=trees())
    def start_tree(self, tree: Spec) -> None:
        self.clock.now = 0.0
        self.run(self.system.__aenter__())
        self.top = self.run(self.system.spawn(build(tree, self.recorder, self.clock)))
        self.model = Model(tree)

    def teardown(self) -> None:
        self.run(self.system.shutdown())
        self.loop.close()

    async def settle(self) -> None:
        """Wait until every live supervisor has handled everything already sent to it."""
        while True:
            before = (len(self.recorder.events), len(self.system.processes()))
            pending: list[ActorRef] = [self.top] if self.top is not None else []
            while pending:
                sup = pending.pop(0)
                try:
                    children = await which_children(sup)
                except ActorError:
                    continue
                pending.extend(c.ref for c in children if c.type == "supervisor" and c.ref)
            if before == (len(self.recorder.events), len(self.system.processes())):
                return

    def live_worker(self, data: st.DataObject) -> str:
        assert self.model is not None
        return data.draw(st.sampled_from(sorted(self.model.live_workers())), label="worker")

    def act(self, name: str, action: str) -> None:
        assert self.model is not None
        ref = self.recorder.live[name]
        reason = {"crash": "crash", "normal": "normal", "shutdown": "shutdown", "kill": "killed"}
        self.model.worker_exits(name, reason[action], runs_terminate=action != "kill")

        async def go() -> None:
            if action == "kill":
                ref.exit("kill")
            elif action == "crash":
                with contextlib.suppress(ActorError):
                    await ref.call("crash")
            else:
                await ref.call(("exit", action))
            await ref.join()
            await self.settle()

        self.run(go())

    def alive(self) -> bool:
        return self.model is not None and self.model.top.alive and bool(self.model.live_workers())

    @precondition(alive)
    @rule(data=st.data(), action=st.sampled_from(["crash", "normal", "shutdown", "kill"]))
    def worker_exits(self, data: st.DataObject, action: str) -> None:
        self.act(self.live_worker(data), action)

    @rule(seconds=st.sampled_from([0.5, 1.0, 2.5, 6.0]))
    def time_passes(self, seconds: float) -> None:
        assert self.model is not None
        self.clock.advance(seconds)
        self.model.now = self.clock.now

    @invariant()
    def the_live_tree_matches_the_model(self) -> None:
        if self.model is None or self.top is None:
            return
        assert self.recorder.events == self.model.events
        live = {name for name, ref in self.recorder.live.items() if ref.alive}
        assert live == self.model.live_workers()
        assert self.top.alive == self.model.top.alive
        live_supervisors = sum(
            1 for ref in self.system.processes() if isinstance(ref._actor, Supervisor)
        )
        assert live_supervisors == len(self.model.live_supervisors())


SupervisionMachine.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSupervisionAgainstTheOtpModel = SupervisionMachine.TestCase
