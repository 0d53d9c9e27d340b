"""`Browser`: headless Chromium under chromedriver, in a sandbox no other local user can reach
and that sees nothing of the host worth stealing.

```python
browser = start_browser(BrowserConfig(allowed_networks=["127.0.0.1/32"]))
browser.driver.get("http://127.0.0.1:8000/")        # a selenium WebDriver
browser.close()                                     # nothing of it is left: processes, files
```

Why a sandbox. chromedriver and Chromium's DevTools listen on TCP ports that take no password:
on the host's loopback, any local user finds them in /proc/net/tcp, starts a chromedriver
session with its own "browser binary" (run as the daemon's user) or opens DevTools and reads
the daemon's files. Flags cannot fix that (chromedriver has no unix-socket mode, and
``--remote-debugging-pipe`` would only close DevTools, not chromedriver). So each browser gets
a network namespace of its own (bubblewrap ``--unshare-all``: network, pid, IPC, UTS, cgroup
and user namespaces): every port chromedriver, DevTools
or a page's WebRTC opens exists only on that namespace's private loopback, invisible and
unreachable from the host, and UDP has nowhere to go. The namespace is joined to the daemon
only two ways, bridged inside by `_bridge` (standard library Python, the sandbox's command):

- ``driver.sock``, a unix socket in the sandbox's own /tmp (a private tmpfs, mode 0700), which
  the daemon reaches as ``/proc/<sandbox pid>/root/tmp/driver.sock`` (a path only the daemon's
  user, or root, may follow): the daemon's selenium client talks HTTP over it to chromedriver
  (``127.0.0.1:9515`` inside);
- a socket pair inherited by the bridge: Chromium's ``--proxy-server`` is ``127.0.0.1:3128``
  inside, and the bridge hands each connection made there to the session's `GuardProxy` as a
  socket (``SCM_RIGHTS``). Every request therefore still passes the guard's address policy,
  and there is no other route out: no interface but ``lo``, no DNS, and the proxy has no
  address anything could find.

What the sandbox sees. A compromised renderer (or a page that finds a ``file:`` or DevTools
path) reads whatever the sandbox can see, and the guard proxy only limits where it could send
it. So the sandbox sees only what Chromium 156 and chromedriver need, read-only: /usr (and the
/bin, /sbin, /lib* symlinks or directories), of /etc only fonts, certificates, the dynamic
linker's cache and configuration, ``alternatives`` and Chromium's launcher settings (`_ETC`),
plus a hosts file and nsswitch.conf written for it (chromedriver finds DevTools at
``localhost``), and the directory of a Chromium or chromedriver installed outside /usr; then
a private /proc (its own pid namespace), a minimal /dev, and the tmpfs /tmp. Not /root, /home,
/work, /var, /run, /srv, /sys, the host's /opt and /tmp, Piano's state directory or the
workspaces; not passwd, shadow, /etc/ssl/private or resolv.conf. The bridge runs on Debian's
``/usr/bin/python3`` and its source is written into the sandbox (``--ro-bind-data``): the
daemon's own interpreter and code may live in a home directory. The environment is cleared
(the daemon's secrets are not passed on). The profile, ``HOME`` (crash reports included) and
chromedriver's scratch files are in /tmp, a tmpfs that exists only as long as the sandbox: no
close, crash or kill can leave them behind on the host.

Whose uid. A daemon run as root starts bubblewrap as `BrowserConfig.sandbox_uid` (the same
number as gid, no supplementary groups, umask 077): an unprivileged bubblewrap then makes a
user namespace of its own, with every capability dropped (``--cap-drop ALL``), so a file put
in view by mistake is still closed to it unless it is world-readable, and the kernel's own
protections (ptrace, /proc, signals) hold between it and the daemon. Not ``nobody``: other
services run as nobody, and a uid shared with them could follow ``/proc/<pid>/root`` to
``driver.sock``. Not a user namespace that maps the daemon's root: that process would still
be root to the host's file permissions (it owns root's 0600 files). Sandboxes of several
sessions share the uid; each has its own pid namespace, /proc and /tmp, so none sees another.
A daemon run as an ordinary user cannot change uid (and needs none: the sandbox holds nothing
of its files); its sandbox runs as that user in a user namespace, with the same view. Either
way bubblewrap runs unprivileged, so the kernel must allow unprivileged user namespaces (where
it does not, the start fails with bubblewrap's own explanation).

Lifetime. The sandbox is a bubblewrap pid namespace started with ``--die-with-parent``: when
the thread that started it or the whole daemon dies (SIGKILL included), bubblewrap is killed
by the kernel (``PR_SET_PDEATHSIG``), its init (pid 1 of the namespace) dies with it, and the
kernel then kills every process in the namespace: chromedriver, Chromium, its zygotes, crash
handler and renderers, whoever their parent is. `Browser.close` lets the bridge end (its stdin
closes; SIGKILL if it lingers), waits for bubblewrap and then for the namespace's init, which
the kernel lets go only once every other process of the namespace is gone, and its /tmp with
them. (No WebDriver "quit" first: the profile is thrown away, so a graceful shutdown would buy
nothing, and a hung chromedriver could hold the close for the client's whole timeout.)
Selenium Manager never runs (the driver is remote, and ``SE_OFFLINE`` is set): nothing is
downloaded. The flags turn off Chromium's background traffic (shared/notes/ecosystem.md §2).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import select
import signal
import socket
import subprocess
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import urllib3
from selenium import webdriver
from selenium.webdriver.chromium.remote_connection import ChromiumRemoteConnection
from selenium.webdriver.remote.client_config import ClientConfig
from selenium.webdriver.remote.webdriver import WebDriver

from piano.tools.browser import _bridge
from piano.tools.browser._config import BrowserConfig
from piano.tools.browser._proxy import GuardProxy
from piano.tools.webfetch import AddressPolicy, SystemResolver

__all__ = ["Browser", "start_browser"]

BWRAP = "/usr/bin/bwrap"
_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-extensions",
    "--disable-features=NetworkTimeServiceQuerying,OptimizationHints,MediaRouter,Translate",
    f"--proxy-server=http://127.0.0.1:{_bridge.PROXY_PORT}",
    "--proxy-bypass-list=<-loopback>",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
)
_BLOCK_DNS = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"
_CLIENT_TIMEOUT = 120
_TMP_BYTES = 1 << 30
"""The sandbox's /tmp (profile, caches, chromedriver's files) is a tmpfs of at most 1 GiB."""


def _require(path: str, package: str, where: str = "or set its path in [tools.browser]") -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise FileNotFoundError(
            f"{path} not found: install Debian's {package} (apt-get install {package}) {where}"
        )


class _UnixConnection(urllib3.connection.HTTPConnection):
    """An HTTP connection over the unix socket `socket_path` (the host part is only a name)."""

    def __init__(self, *args: Any, socket_path: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.socket_path = socket_path

    def _new_conn(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if isinstance(self.timeout, int | float):
            sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError as exc:
            sock.close()
            raise urllib3.exceptions.NewConnectionError(
                self, f"cannot connect to {self.socket_path}: {exc}"
            ) from exc
        return sock


class _UnixPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _UnixConnection


class _UnixPoolManager:
    """What selenium's `RemoteConnection` needs of a urllib3 PoolManager, over a unix socket."""

    def __init__(self, socket_path: str, timeout: float) -> None:
        self.pool = _UnixPool(
            "127.0.0.1", _bridge.DRIVER_PORT, timeout=timeout, maxsize=4, socket_path=socket_path
        )

    def request(self, method: str, url: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.pool.request(method, target, redirect=False, **kwargs)

    def clear(self) -> None:
        self.pool.close()


class _DriverConnection(ChromiumRemoteConnection):
    """selenium's connection to chromedriver, over the session's ``driver.sock``."""

    def __init__(self, socket_path: str) -> None:
        self._socket_path = socket_path
        address = f"http://127.0.0.1:{_bridge.DRIVER_PORT}"  # chromedriver checks the Host
        super().__init__(
            remote_server_addr=address,
            vendor_prefix="goog",
            browser_name="chrome",
            ignore_proxy=True,
            client_config=ClientConfig(
                remote_server_addr=address, keep_alive=True, timeout=_CLIENT_TIMEOUT
            ),
        )

    def _get_connection_manager(self) -> _UnixPoolManager:
        self.manager = _UnixPoolManager(self._socket_path, _CLIENT_TIMEOUT)
        return self.manager


class _ProxyThread:
    """The session's `GuardProxy`, served on a loop of its own on a thread of its own, so a
    `Browser` works the same from an actor's thread and from plain synchronous code. It ends
    on `close` or as soon as the sandbox's process `pid` exits, whichever is first, so a browser
    whose owner vanished without closing it does not leave the thread behind."""

    def __init__(self, proxy: GuardProxy, channel: socket.socket, pid: int, timeout: float) -> None:
        self.proxy = proxy
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._thread = threading.Thread(
            target=asyncio.run, args=(self._serve(channel, pid, ready),), name="browser-proxy"
        )
        self._thread.daemon = True
        self._thread.start()
        ready.result(timeout)

    async def _serve(
        self, channel: socket.socket, pid: int, ready: concurrent.futures.Future[None]
    ) -> None:
        try:
            sandbox = os.pidfd_open(pid)
        except OSError as exc:
            ready.set_exception(exc)
            return
        try:
            await self.proxy.start_passed(channel)
            self._loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            self._loop.add_reader(sandbox, self._stopping.set)  # readable once it has exited
            ready.set_result(None)
            await self._stopping.wait()
            self._loop.remove_reader(sandbox)
            self.proxy.close()  # asyncio.run then cancels the connections still open
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
        finally:
            os.close(sandbox)

    def close(self) -> None:
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process we can see."""
    parents: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    return parents


def _children(pid: int) -> list[int]:
    return sorted(child for child, parent in _parents().items() if parent == pid)


def _descendants(root: int, parents: dict[int, int]) -> list[int]:
    """Every descendant of `root`, breadth first (children in pid order)."""
    found: list[int] = []
    frontier = [root]
    while frontier:
        pid = frontier.pop(0)
        children = sorted(child for child, parent in parents.items() if parent == pid)
        found += children
        frontier += children
    return found


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


PYTHON = "/usr/bin/python3"
"""The bridge's interpreter: Debian's, which the sandbox has under /usr (the daemon's own may
live where the sandbox must not look, such as a home directory)."""
_BRIDGE = "/opt/piano/bridge.py"
_NAMES = {
    "/etc/hosts": b"127.0.0.1 localhost\n::1 localhost\n",
    "/etc/nsswitch.conf": b"passwd: files\ngroup: files\nhosts: files\n",
}
"""Files written for the sandbox: chromedriver finds DevTools at ``localhost`` (so it needs a
hosts file), and nothing else needs the host's names or DNS."""
_ETC = (
    *("fonts", "ssl/certs", "ld.so.cache", "ld.so.conf", "ld.so.conf.d"),
    *("alternatives", "chromium", "chromium.d", "localtime"),
)
"""What the sandbox sees of /etc: fonts, certificates, the dynamic linker's configuration,
the ``alternatives`` symlinks, Chromium's own launcher settings. Not /etc/ssl/private,
passwd, group, shadow, hosts, resolv.conf, or anything else (Chromium runs without them)."""


def _sandbox_uid(config: BrowserConfig) -> int | None:
    """The uid (and gid) the sandbox runs as: `BrowserConfig.sandbox_uid` for a daemon run as
    root, else None (the daemon's own, which a user namespace cannot change)."""
    return config.sandbox_uid if os.geteuid() == 0 else None


def _pipes(contents: dict[str, bytes]) -> dict[str, int]:
    """For each file, a pipe's read end from which its (small: a few KiB, within the pipe's
    buffer) contents can be read."""
    fds = {}
    for path, content in contents.items():
        read, write = os.pipe()
        with open(write, "wb") as writer:
            writer.write(content)
        fds[path] = read
    return fds


def _covered(path: str) -> bool:
    return path == "/usr" or path.startswith("/usr/")


def _sandbox_arguments(config: BrowserConfig, data: dict[str, int], proxy_fd: int) -> list[str]:
    """bubblewrap's arguments: the namespaces, the file system (read-only system directories,
    a private /proc, /dev and /tmp, nothing else of the host) and the bridge as its command,
    which hands connections over `proxy_fd`; `data` are the files it writes (path -> the fd
    it reads the contents from)."""
    view = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):  # merged /usr: /bin -> usr/bin
            view += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            view += ["--ro-bind", top, top]
    for name in _ETC:
        view += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    for program in (config.chromium, config.chromedriver):
        # A browser installed outside /usr (such as /opt/google/chrome) brings its directory.
        home = os.path.dirname(os.path.realpath(program))
        if not _covered(home):
            view += ["--ro-bind", home, home]
    return [
        *("--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL"),
        *view,
        *("--dev", "/dev", "--proc", "/proc"),
        *("--size", str(_TMP_BYTES), "--perms", "0700", "--tmpfs", "/tmp"),
        *(argument for path, fd in data.items() for argument in ("--ro-bind-data", str(fd), path)),
        *("--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin"),
        *("--setenv", "HOME", "/tmp/home", "--setenv", "LANG", "C.UTF-8"),
        *("--", PYTHON, "-I", _BRIDGE, "/tmp", config.chromedriver, str(proxy_fd)),
    ]


class Browser:
    """A running sandboxed browser: `driver` drives it, `proxy` guards it, `close` ends it.

    Not thread-safe: use it from one thread (a `BrowserSession`'s)."""

    def __init__(self, config: BrowserConfig, *, label: str = "") -> None:
        _require(config.chromium, "chromium")
        _require(config.chromedriver, "chromium-driver")
        _require(BWRAP, "bubblewrap", "(the browser runs in a bubblewrap sandbox)")
        _require(PYTHON, "python3", "(the sandbox's forwarder runs on it)")
        os.environ.setdefault("SE_OFFLINE", "true")
        os.environ.setdefault("SE_AVOID_STATS", "true")
        self.config = config
        self.proxy = GuardProxy(
            AddressPolicy(config.allowed_networks), SystemResolver(), label=label
        )
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.driver: WebDriver | None = None
        self._connection: _DriverConnection | None = None
        self._namespace: int | None = None  # a pidfd of the namespace's init
        self._proxy_thread: _ProxyThread | None = None
        self._channel: socket.socket | None = None  # until the proxy thread has it
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        config = self.config
        uid = _sandbox_uid(config)
        # The bridge hands Chromium's connections to the proxy over this pair (see _bridge).
        channel, sandbox_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._channel = channel
        data = _pipes({**_NAMES, _BRIDGE: Path(_bridge.__file__).read_bytes()})
        try:
            self.sandbox = sandbox = subprocess.Popen(
                [BWRAP, *_sandbox_arguments(config, data, sandbox_end.fileno())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                pass_fds=(*data.values(), sandbox_end.fileno()),
                # As the sandbox uid, with no groups and umask 077; as ourselves (None, -1) else.
                user=uid,
                group=uid,
                extra_groups=None if uid is None else [],
                umask=-1 if uid is None else 0o077,
            )
        finally:
            for fd in data.values():
                os.close(fd)
            sandbox_end.close()
        assert sandbox.stdout is not None
        assert sandbox.stderr is not None
        readable, _, _ = select.select([sandbox.stdout], [], [], config.start_timeout)
        said = sandbox.stdout.readline() if readable else b""
        if said != b"ready\n":
            self.sandbox = None
            why = _end(sandbox)
            raise RuntimeError(
                f"the browser sandbox did not start within {config.start_timeout:g}s "
                f"(bwrap exit status {sandbox.returncode}): {why or 'no reason given'}"
            )
        sandbox.stderr.close()  # bwrap and the bridge say nothing more there
        # The sandbox's /tmp as the daemon sees it: only its own user can follow /proc/PID/root.
        init = _children(sandbox.pid)[0]
        self._namespace = os.pidfd_open(init)
        inside = Path(f"/proc/{init}/root/tmp")
        self._channel = None  # the proxy's from now on
        self._proxy_thread = _ProxyThread(self.proxy, channel, init, config.start_timeout)
        options = webdriver.ChromeOptions()
        options.binary_location = config.chromium
        for flag in (
            *_FLAGS,
            f"--window-size={config.window_size}",
            "--user-data-dir=/tmp/profile",
            *([_BLOCK_DNS] if config.block_dns else []),
            *config.extra_args,
        ):
            options.add_argument(flag)
        self._connection = _DriverConnection(str(inside / "driver.sock"))
        self.driver = WebDriver(command_executor=self._connection, options=options)
        self.driver.set_page_load_timeout(config.page_load_timeout)
        self.driver.set_script_timeout(config.script_timeout)

    def pids(self) -> list[int]:
        """Pids of the Chromium processes (the browser first), as the host sees them."""
        if self.sandbox is None or self.sandbox.poll() is not None:
            return []
        parents = _parents()
        for pid in _descendants(self.sandbox.pid, parents):
            if _comm(pid) == "chromedriver":
                return _descendants(pid, parents)
        return []

    def close(self) -> None:
        """End the sandbox (every process in it, and its /tmp with the profile) and stop the
        proxy; on return all of it is gone. Never raises; a second call does nothing."""
        self.driver = None
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.manager.clear()
        sandbox, self.sandbox = self.sandbox, None
        if sandbox is not None:
            _end(sandbox)
        namespace, self._namespace = self._namespace, None
        if namespace is not None:
            # bubblewrap exits as soon as its command does; the namespace's init goes once
            # the kernel has killed and reaped every other process of the namespace.
            select.select([namespace], [], [], 30)
            os.close(namespace)
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        proxy_thread, self._proxy_thread = self._proxy_thread, None
        if proxy_thread is not None:
            proxy_thread.close()


def _end(sandbox: subprocess.Popen[bytes]) -> str:
    """End the sandbox: its bridge stops when its stdin closes; SIGKILL if it lingers. Once
    bubblewrap has exited, its pid namespace and every process in it are gone. Returns what
    it said on stderr, if that is still open (only before it was ready)."""
    with contextlib.suppress(OSError):
        if sandbox.stdin is not None:
            sandbox.stdin.close()
    try:
        sandbox.wait(5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sandbox.pid, signal.SIGKILL)
        sandbox.wait()
    said = b""
    if sandbox.stderr is not None and not sandbox.stderr.closed:
        said = sandbox.stderr.read(2000)
        sandbox.stderr.close()
    if sandbox.stdout is not None:
        sandbox.stdout.close()
    return said.decode(errors="replace").strip()


def start_browser(config: BrowserConfig, *, label: str = "") -> Browser:
    """A fresh sandboxed browser (see the module documentation); raises if it cannot start,
    leaving nothing behind."""
    return Browser(config, label=label)
