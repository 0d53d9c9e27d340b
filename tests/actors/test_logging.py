"""The runtime embedded in another program writes nothing to its stdout: its logs go to the
standard library's logging (stderr from WARNING up) until the program configures structlog."""

from __future__ import annotations

import subprocess
import sys

PROGRAM = """
import asyncio, sys
import structlog
from actors import Actor, ActorSystem

class Boom(Actor):
    def handle_cast(self, message):
        raise RuntimeError("boom")

async def main():
    async with ActorSystem() as system:
        ref = await system.spawn(Boom(), name="boom")
        ref.cast(1)
        await ref.join()
    print("the program's own output")

if sys.argv[1] == "structlog":
    seen = []
    def keep(logger, method, event):
        seen.append(event["event"])
        raise structlog.DropEvent
    structlog.configure(processors=[keep])
    asyncio.run(main())
    print("structlog saw", seen)
elif sys.argv[1] == "quiet":
    import logging
    logging.getLogger("actors").setLevel(logging.CRITICAL)
    asyncio.run(main())
else:
    asyncio.run(main())
"""


def run(mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, mode], capture_output=True, text=True, check=True
    )


def test_an_embedding_program_gets_the_crash_report_on_stderr_and_nothing_on_stdout() -> None:
    done = run("plain")
    assert done.stdout == "the program's own output\n"
    assert "event='actor.crashed'" in done.stderr
    assert "RuntimeError: boom" in done.stderr


def test_the_standard_librarys_logging_configuration_silences_the_runtime() -> None:
    done = run("quiet")
    assert done.stdout == "the program's own output\n"
    assert done.stderr == ""


def test_a_program_that_configures_structlog_gets_the_runtimes_lines_there() -> None:
    done = run("structlog")
    assert done.stdout.splitlines()[0] == "the program's own output"
    assert "'actor.crashed'" in done.stdout.splitlines()[1]
    assert done.stderr == ""
