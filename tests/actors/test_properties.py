"""Properties of the runtime, checked by Hypothesis.

- Mailbox ordering: whatever the interleaving of several senders' calls, casts and sends, and
  whatever the handler awaits, each sender's messages are handled exactly once, in the order
  that sender sent them.
- Signals: over random sequences of spawns (trapping or not), links, monitors, crashes, normal
  and shutdown exits, kills and exit signals, the actors alive and the `Exit` and `Down`
  messages received match a small model of OTP's rules.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from actors import Actor, ActorExited, ActorRef, ActorSystem, Caller, Down, Exit

# -- mailbox ordering ------------------------------------------------------------------------


class Log(Actor):
    def __init__(self, yields: frozenset[int]) -> None:
        self.handled: list[tuple[int, int]] = []
        self.yields = yields

    async def _record(self, message: tuple[int, int]) -> None:
        if message[1] in self.yields:
            await asyncio.sleep(0)
        self.handled.append(message)

    async def handle_cast(self, message: tuple[int, int]) -> None:
        await self._record(message)

    async def handle_info(self, message: tuple[int, int]) -> None:
        await self._record(message)

    async def handle_call(self, message: Any, caller: Caller) -> Any:
        if message == "log":
            return list(self.handled)
        await self._record(message)
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(
        st.tuples(st.integers(0, 3), st.sampled_from(["call", "cast", "send"]), st.booleans()),
        min_size=1,
        max_size=60,
    ),
    yields=st.frozensets(st.integers(0, 60)),
)
def test_each_senders_messages_are_handled_once_in_the_order_it_sent_them(
    plan: list[tuple[int, str, bool]], yields: frozenset[int]
) -> None:
    async def main() -> list[tuple[int, int]]:
        async with ActorSystem() as system:
            ref = await system.spawn(Log(yields))
            queues: dict[int, list[tuple[str, bool]]] = {}
            for sender, kind, pause in plan:
                queues.setdefault(sender, []).append((kind, pause))

            async def send_all(index: int) -> None:
                for n, (kind, pause) in enumerate(queues[index]):
                    message = (index, n)
                    if kind == "call":
                        await ref.call(message)
                    elif kind == "cast":
                        ref.cast(message)
                    else:
                        ref.send(message)
                    if pause:
                        await asyncio.sleep(0)

            await asyncio.gather(*(send_all(index) for index in queues))
            handled: list[tuple[int, int]] = await ref.call("log")
            return handled

    handled = asyncio.run(main())
    senders = {p[0] for p in plan}
    expected = {(s, n) for s in senders for n in range(sum(1 for p in plan if p[0] == s))}
    assert sorted(handled) == sorted(expected), "a message was lost or handled twice"
    for sender in senders:
        mine = [n for s, n in handled if s == sender]
        assert mine == sorted(mine), f"sender {sender}'s messages were handled out of order"


# -- links, monitors and exit signals --------------------------------------------------------


class Node(Actor):
    """Records the Exit and Down messages it receives; links, monitors, stops on request."""

    def __init__(self, name: str, trap: bool) -> None:
        self.name = name
        self.trap = trap
        self.received: list[tuple[str, str, str]] = []

    async def init(self) -> None:
        self.trap_exits = self.trap

    def handle_info(self, message: Any) -> None:
        match message:
            case Exit(sender=sender, reason=reason):
                who = sender._actor.name if sender is not None else "-"  # type: ignore[attr-defined]
                self.received.append(("exit", who, describe(reason)))
            case Down(actor=actor, reason=reason):
                self.received.append(("down", actor._actor.name, describe(reason)))  # type: ignore[attr-defined]

    def handle_call(self, message: Any, caller: Caller) -> Any:
        match message:
            case "received":
                return list(self.received)
            case ("link", ActorRef() as other):
                self.link(other)
            case ("monitor", ActorRef() as other):
                self.monitor(other)
            case ("stop", reason):
                self.stop(reason)
            case "crash":
                raise RuntimeError("boom")
        return None


def describe(reason: object) -> str:
    if isinstance(reason, BaseException):
        return f"{type(reason).__name__}:{reason}"
    return str(reason)


@dataclass
class Model:
    """OTP's rules for exits, links and monitors, on names."""

    trap: dict[str, bool] = field(default_factory=dict)
    links: set[frozenset[str]] = field(default_factory=set)
    monitors: list[tuple[str, str]] = field(default_factory=list)
    received: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def die(self, name: str, reason: str) -> None:
        if name not in self.trap:
            return
        del self.trap[name]
        linked = [other for pair in self.links if name in pair for other in pair if other != name]
        self.links = {pair for pair in self.links if name not in pair}
        for watcher, target in list(self.monitors):
            if target == name:
                self.monitors.remove((watcher, target))
                if watcher in self.trap:
                    self.received[watcher].append(("down", name, reason))
        self.monitors = [(w, t) for w, t in self.monitors if w != name]
        for other in linked:
            self.signal(other, name, reason)

    def signal(self, name: str, sender: str, reason: str) -> None:
        if name not in self.trap:
            return
        if reason == "kill":
            self.die(name, "killed")
        elif self.trap[name]:
            self.received[name].append(("exit", sender, reason))
        elif reason != "normal":
            self.die(name, reason)


class SignalMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.system = ActorSystem()
        self.loop.run_until_complete(self.system.__aenter__())
        self.refs: dict[str, ActorRef] = {}
        self.model = Model()
        self.count = 0

    def teardown(self) -> None:
        self.loop.run_until_complete(self.system.shutdown())
        self.loop.close()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, 10))

    def alive(self) -> list[str]:
        return sorted(self.model.trap)

    @rule(trap=st.booleans())
    def spawn(self, trap: bool) -> None:
        name = f"n{self.count}"
        self.count += 1
        self.refs[name] = self.run(self.system.spawn(Node(name, trap)))
        self.model.trap[name] = trap
        self.model.received[name] = []

    @precondition(lambda self: len(self.model.trap) >= 2)
    @rule(data=st.data())
    def link(self, data: st.DataObject) -> None:
        a, b = data.draw(
            st.lists(st.sampled_from(self.alive()), min_size=2, max_size=2, unique=True)
        )
        self.run(self.refs[a].call(("link", self.refs[b])))
        self.model.links.add(frozenset((a, b)))

    @precondition(lambda self: len(self.model.trap) >= 2)
    @rule(data=st.data())
    def monitor(self, data: st.DataObject) -> None:
        watcher, target = data.draw(
            st.lists(st.sampled_from(self.alive()), min_size=2, max_size=2, unique=True)
        )
        self.run(self.refs[watcher].call(("monitor", self.refs[target])))
        self.model.monitors.append((watcher, target))

    @precondition(lambda self: bool(self.model.trap))
    @rule(data=st.data(), how=st.sampled_from(["normal", "shutdown", "crash", "kill"]))
    def exits(self, data: st.DataObject, how: str) -> None:
        name = data.draw(st.sampled_from(self.alive()))
        ref = self.refs[name]
        doomed_before = set(self.model.trap)
        if how == "crash":
            self.model.die(name, "RuntimeError:boom")
        elif how == "kill":
            self.model.signal(name, "-", "kill")
        else:
            self.model.die(name, how)

        async def act() -> None:
            if how == "crash":
                with contextlib.suppress(ActorExited):
                    await ref.call("crash")
            elif how == "kill":
                ref.exit("kill")
            else:
                await ref.call(("stop", how))
            for dead in doomed_before - set(self.model.trap):
                await self.refs[dead].join(timeout=5)

        self.run(act())

    @precondition(lambda self: bool(self.model.trap))
    @rule(data=st.data(), reason=st.sampled_from(["normal", "shutdown", "custom"]))
    def exit_signal_from_outside(self, data: st.DataObject, reason: str) -> None:
        name = data.draw(st.sampled_from(self.alive()))
        before = set(self.model.trap)
        self.model.signal(name, "-", reason)

        async def act() -> None:
            self.refs[name].exit(reason)
            for dead in before - set(self.model.trap):
                await self.refs[dead].join(timeout=5)

        self.run(act())

    @invariant()
    def alive_actors_and_their_messages_match_the_model(self) -> None:
        alive = {name for name, ref in self.refs.items() if ref.alive}
        assert alive == set(self.model.trap)
        for name in alive:
            received = self.run(self.refs[name].call("received"))
            assert sorted(received) == sorted(self.model.received[name]), name


SignalMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestSignalsAgainstTheOtpModel = SignalMachine.TestCase
