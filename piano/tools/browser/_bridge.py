"""The browser sandbox's forwarder: runs *inside* the sandbox's network namespace.

Started by `piano.tools.browser._sandbox` as the sandbox's command, by path and with ``python
-I`` (standard library only: it imports nothing of Piano), as::

    python -I _bridge.py DIRECTORY CHROMEDRIVER PROXY_FD

It starts chromedriver on ``127.0.0.1:9515`` of the namespace and joins the namespace's
loopback to the daemon two ways:

- ``DIRECTORY/driver.sock`` (created here, in the sandbox's owner-only /tmp): each connection
  is forwarded to chromedriver, so the daemon's selenium client reaches it without any TCP port
  on the host;
- ``127.0.0.1:3128`` of the namespace: for each connection the bridge makes a socket pair and
  hands one end to the daemon over the inherited unix socket `PROXY_FD` (``SCM_RIGHTS``), where
  the daemon's `GuardProxy` serves it, so Chromium's ``--proxy-server`` is the guard and the
  guard is the only way out of the namespace. (Handing sockets over needs no file the daemon
  must create in the sandbox, which it could not: the sandbox's user namespace does not map
  the daemon's uid.)

Once chromedriver listens and both forwarders are in place, it writes ``ready`` to stdout (or
why it could not to stderr, which it then no longer uses). It
ends, taking chromedriver with it, when its stdin closes (the daemon let go of it) or when
chromedriver exits; the sandbox's ``--die-with-parent`` and pid namespace do the same for a
daemon that is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Awaitable

DRIVER_PORT = 9515
PROXY_PORT = 3128


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        if writer.can_write_eof():
            writer.write_eof()


async def _join(
    client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    server: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    try:
        await asyncio.gather(_pipe(client[0], server[1]), _pipe(server[0], client[1]))
    finally:
        for _, writer in (client, server):
            writer.close()


async def _forward(
    connect: Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    """Join one accepted connection to a new one to the other side, until either closes."""
    try:
        server = await connect
        await _join((reader, writer), server)
    except OSError:
        writer.close()
    except asyncio.CancelledError:
        pass  # the bridge is ending: nothing awaits this connection


async def _hand_over(
    channel: socket.socket, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Join one accepted connection to a fresh socket pair whose other end goes to the daemon
    over `channel`."""
    ours, theirs = socket.socketpair()
    try:
        socket.send_fds(channel, [b"c"], [theirs.fileno()])
    except OSError:
        ours.close()
        writer.close()
        return
    finally:
        theirs.close()
    await _forward(asyncio.open_connection(sock=ours), reader, writer)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def _stdin_closed() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await _drain(reader)


async def _exited(pid: int) -> None:
    """Return once process `pid` has exited (its pidfd turns readable). asyncio's own
    `Process.wait` would also wait for the process's pipes, which Chromium keeps open."""
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(pid)
    gone = loop.create_future()
    loop.add_reader(pidfd, gone.set_result, None)
    try:
        await gone
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)


async def main(directory: str, chromedriver: str, proxy_fd: int) -> int:
    """Serve until the daemon lets go or chromedriver ends; the exit status."""
    os.umask(0o077)  # driver.sock, chromedriver's and Chromium's files: owner-only
    driver = await asyncio.create_subprocess_exec(
        chromedriver,
        f"--port={DRIVER_PORT}",
        "--allowed-ips=127.0.0.1",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert driver.stdout is not None
    channel = socket.socket(fileno=proxy_fd)
    try:
        # chromedriver says so once it listens: "ChromeDriver was started successfully on port"
        while b"started successfully" not in (line := await driver.stdout.readline()):
            if not line:
                status = await driver.wait()
                sys.stderr.write(f"{chromedriver} exited with status {status} before it listened\n")
                return 1
        drained = asyncio.ensure_future(_drain(driver.stdout))
        servers = [
            await asyncio.start_unix_server(
                lambda r, w: _forward(asyncio.open_connection("127.0.0.1", DRIVER_PORT), r, w),
                os.path.join(directory, "driver.sock"),
            ),
            await asyncio.start_server(
                lambda r, w: _hand_over(channel, r, w),
                "127.0.0.1",
                PROXY_PORT,
            ),
        ]
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        quiet = os.open(os.devnull, os.O_WRONLY)  # the daemon reads stderr only until ready
        os.dup2(quiet, 2)
        os.close(quiet)
        ends = [asyncio.ensure_future(_exited(driver.pid)), asyncio.ensure_future(_stdin_closed())]
        await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
        del servers, drained  # kept until now; they go with the process
        return 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            driver.kill()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    status = asyncio.new_event_loop().run_until_complete(
        main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    )
    # Leave at once, without asyncio's orderly teardown: Chromium still holds chromedriver's
    # pipes, and it goes only when this process has gone and the namespace with it.
    sys.stdout.flush()
    os._exit(status)
