"""A private RabbitMQ node for the tests that restart or kill the broker (never the machine's).

Started from Debian's rabbitmq-server in a temporary directory (its own node name, Mnesia
directory, logs and config) on free loopback ports, as `scripts/rabbitmq` does; `stop()` stops
the Erlang VM and `start()` brings the same node back with its data.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")

__all__ = ["TemporaryNode"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryNode:
    def __init__(self, directory: Path) -> None:
        if not SERVER.exists():
            raise AssertionError(
                f"{SERVER} is missing: install RabbitMQ with `apt-get install rabbitmq-server` "
                "(scripts/test does it)"
            )
        self.directory = directory
        self.port = _free_port()
        self.dist_port = _free_port()
        self.name = f"piano-test-{os.getpid()}-{self.port}@localhost"
        self.process: asyncio.subprocess.Process | None = None
        (directory / "enabled_plugins").write_text("[].")
        (directory / "rabbitmq.conf").write_text("loopback_users = none\n")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        d = str(self.directory)
        return {
            **os.environ,
            "HOME": d,
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": f"{d}/mnesia",
            "RABBITMQ_LOG_BASE": f"{d}/log",
            "RABBITMQ_ENABLED_PLUGINS_FILE": f"{d}/enabled_plugins",
            "RABBITMQ_CONFIG_FILE": f"{d}/rabbitmq",
            "RABBITMQ_PID_FILE": f"{d}/pid",
            "RABBITMQ_CONF_ENV_FILE": f"{d}/rabbitmq-env.conf",
            "RABBITMQ_ADVANCED_CONFIG_FILE": f"{d}/advanced.config",
        }

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 1):
                return True
        except OSError:
            return False

    async def start(self, timeout: float = 60.0) -> None:
        log = os.open(self.directory / "server.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            self.process = await asyncio.create_subprocess_exec(
                str(SERVER), env=self._env(), stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            os.close(log)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        for _ in iter(int, 1):
            if await asyncio.to_thread(self.answers):
                return
            if self.process.returncode is not None or loop.time() > deadline:
                tail = (self.directory / "server.log").read_text()[-2000:]
                raise AssertionError(f"the temporary RabbitMQ node did not start:\n{tail}")
            await asyncio.sleep(0.1)  # polling the port of a process starting up

    def _vm_pid(self) -> int | None:
        try:
            return int((self.directory / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    async def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60.0) -> None:
        """Stop the node's Erlang VM with `sig` (TERM: RabbitMQ shuts down cleanly; KILL: a
        crash) and wait until its wrapper has exited."""
        pid = self._vm_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        process, self.process = self.process, None
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                await process.wait()
        (self.directory / "pid").unlink(missing_ok=True)
