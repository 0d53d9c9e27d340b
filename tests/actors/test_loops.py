"""The runtime runs on the event loop the program chooses: asyncio's by default, uvloop as an
opt-in, and it works when uvloop is not installed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest
import uvloop

from actors import Actor, ActorSystem, loop_factory, run_in_thread
from supervisors import Application, ChildSpec


class Echo(Actor):
    def handle_call(self, message: Any, caller: Any) -> Any:
        return (message, type(asyncio.get_running_loop()).__module__)


async def _echo_once() -> tuple[Any, str]:
    async with ActorSystem() as system:
        ref = await system.spawn(Echo())
        result: tuple[Any, str] = await ref.call("hi")
        return result


def test_an_actor_system_runs_on_uvloop_chosen_the_standard_asyncio_way() -> None:
    with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:
        assert runner.run(_echo_once()) == ("hi", "uvloop")
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        assert runner.run(_echo_once())[1] == "asyncio.unix_events"


def test_run_in_thread_runs_its_system_on_the_loop_it_is_given() -> None:
    with run_in_thread(loop_factory=loop_factory("uvloop")) as system:
        ref = system.spawn(Echo())
        assert ref.call("x") == ("x", "uvloop")
        assert isinstance(system.run(asyncio.get_running_loop), uvloop.Loop)


def test_an_application_runs_on_the_loop_it_is_given() -> None:
    seen: list[object] = []

    class StopsTheApplication(Actor):
        def init(self) -> Any:
            seen.append(asyncio.get_running_loop())
            app.stop()
            return super().init()

    app = Application([ChildSpec("once", start=StopsTheApplication)])
    assert app.main(loop_factory=loop_factory("uvloop")) == 0
    assert isinstance(seen[0], uvloop.Loop)


def test_asking_for_uvloop_when_it_is_missing_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)
    with pytest.raises(ImportError, match="pip install uvloop"):
        loop_factory("uvloop")
    with pytest.raises(ValueError, match="asyncio"):
        loop_factory("trio")  # type: ignore[arg-type]


def test_the_runtime_works_without_uvloop_installed() -> None:
    program = (
        "import sys; sys.modules['uvloop'] = None\n"
        "import asyncio, actors, supervisors, actors.pipeline\n"
        "from actors import Actor, ActorSystem\n"
        "class E(Actor):\n"
        "    def handle_call(self, m, c): return m\n"
        "async def main():\n"
        "    async with ActorSystem() as s:\n"
        "        r = await s.spawn(E())\n"
        "        return await r.call(42)\n"
        "print(asyncio.run(main()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "42"
