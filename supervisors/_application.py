"""Application: run a supervision tree as a program, until told to stop.

```python
app = Application([ChildSpec("store", start=Store), ...], strategy="rest_for_one")
raise SystemExit(app.main())          # or: exit_code = await app.run()
```

`run` starts an `ActorSystem` and the top supervisor (children start in order; a start
failure ends `run` with exit code 1 at once), then waits. SIGTERM or SIGINT starts an orderly
shutdown: the tree stops in reverse start order, and anything still running after
`shutdown_timeout` seconds is killed; the exit code is 0. If the tree gives up on its own
(restart intensity exceeded), every actor is stopped and the exit code is 1, so a service
manager (systemd, Kubernetes) can restart the process.

`reload` (optional) is called on SIGHUP, on the event loop (OTP's ``config_change``, what
``systemctl reload`` sends): the program re-reads what it can change while running. An
exception it raises is logged (``application.reload_failed``) and the tree runs on.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence

from actors import SHUTDOWN, ActorRef, ActorSystem, ActorTimeout, StartFailed, get_logger
from supervisors._spec import ChildSpec
from supervisors._supervisor import Strategy, Supervisor

__all__ = ["Application"]

log = get_logger("supervisors")

Ready = Callable[[ActorSystem, ActorRef], Awaitable[None]]


class Application:
    """A top-level supervision tree with signal handling; see the module documentation."""

    def __init__(
        self,
        children: Sequence[ChildSpec],
        *,
        name: str = "application",
        strategy: Strategy = "one_for_one",
        max_restarts: int = 3,
        max_seconds: float = 5.0,
        shutdown_timeout: float = 30.0,
        reload: Callable[[], object] | None = None,
    ) -> None:
        self.name = name
        self.reload = reload
        self.shutdown_timeout = shutdown_timeout
        self._supervisor = Supervisor(
            children, strategy=strategy, max_restarts=max_restarts, max_seconds=max_seconds
        )
        self._stop: asyncio.Event | None = None
        self.system: ActorSystem | None = None
        self.supervisor: ActorRef | None = None

    def stop(self) -> None:
        """Ask a running application to shut down (what SIGTERM does)."""
        if self._stop is not None:
            self._stop.set()

    async def run(
        self,
        *,
        ready: Ready | None = None,
        signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
    ) -> int:
        """Run until stopped; returns the process exit code (0 clean stop, 1 gave up/failed)."""
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        installed = []
        for sig in signals:
            loop.add_signal_handler(sig, self._on_signal, sig)
            installed.append(sig)
        if self.reload is not None:
            loop.add_signal_handler(signal.SIGHUP, self._on_reload)
            installed.append(signal.SIGHUP)
        try:
            async with ActorSystem() as system:
                self.system = system
                try:
                    top = await system.spawn(self._supervisor, name=self.name)
                except StartFailed as exc:
                    log.error(
                        "application.start_failed", application=self.name, reason=repr(exc.reason)
                    )
                    return 1
                self.supervisor = top
                log.info("application.started", application=self.name)
                if ready is not None:
                    await ready(system, top)
                stopping = asyncio.ensure_future(self._stop.wait())
                exited = asyncio.ensure_future(top.join())
                await asyncio.wait({stopping, exited}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if exited.done():
                    log.error(
                        "application.gave_up", application=self.name, reason=repr(exited.result())
                    )
                    return 1
                exited.cancel()
                log.info("application.stopping", application=self.name)
                try:
                    await top.stop(SHUTDOWN, timeout=self.shutdown_timeout)
                except ActorTimeout:
                    log.error(
                        "application.shutdown_timeout",
                        application=self.name,
                        timeout=self.shutdown_timeout,
                    )
                    top.exit("kill")
                log.info("application.stopped", application=self.name)
                return 0
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("application.signal", application=self.name, signal=sig.name)
        self.stop()

    def _on_reload(self) -> None:
        log.info("application.signal", application=self.name, signal="SIGHUP")
        if self.reload is None:
            return
        try:
            self.reload()
        except Exception as exc:
            log.error("application.reload_failed", application=self.name, reason=repr(exc))

    def main(self, *, loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> int:
        """Run on a fresh event loop (for a program's entry point); `loop_factory` chooses it
        (e.g. ``actors.loop_factory("uvloop")``), None: asyncio's."""
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(self.run())
