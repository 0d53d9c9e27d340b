"""The agent's browser is no door for other local users (issue #12), through the running daemon.

Each test starts `piano run` with the real codex and the fake model provider, lets the agent
open a page on 127.0.0.1 with Piano's ``browser_visit`` MCP tool, and then attacks the
daemon's browser the way it was attacked: another uid looks for its ports on the host, the
daemon is SIGKILLed mid-page, a normal stop looks for leftovers, a page tries WebRTC to a UDP
listener on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc
import pytest
from aiohttp import web

from piano.tools.browser import BrowserConfig
from tests.acceptance.daemon import PIANO, chat, daemon_running, write_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, FunctionCall, Text
from tests.test_webfetch import LocalSite
from tests.tools.conftest import require_binaries

pytestmark = pytest.mark.anyio

PAGE = "<html><head><title>Local page</title></head><body><p>hello</p></body></html>"
TOOLS = """
[tools.browser]
block_dns = true
allowed_networks = ["127.0.0.1/32"]
"""
WEBRTC = """<html><head><title>Local page</title></head><body><p>webrtc</p><script>
const finish = (why) => fetch("/gathered?why=" + why);
const pc = new RTCPeerConnection({iceServers: [{urls: "stun:127.0.0.1:%d"}]});
pc.createDataChannel("probe");
pc.onicegatheringstatechange = () => {
  if (pc.iceGatheringState === "complete") finish("complete");
};
pc.createOffer()
  .then((offer) => pc.setLocalDescription(offer))
  .then(() => setTimeout(() => finish("window"), 10000));
</script></body></html>"""
BROWSER_COMMANDS = ("chromium", "chromedriver", "chrome_crashpad")
AS_NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
PROBE = """
import json, socket, sys
answered = {}
for address in json.loads(sys.argv[1]):  # a port on 127.0.0.1, or a unix socket's path
    try:
        if isinstance(address, int):
            connection = socket.create_connection(("127.0.0.1", address), timeout=5)
        else:
            connection = socket.socket(socket.AF_UNIX)
            connection.settimeout(5)
            connection.connect(address)
        with connection:
            connection.sendall(b"GET /json/version HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
            answered[address] = connection.recv(4096).decode("latin-1")
    except OSError as exc:
        answered[address] = None
print(json.dumps(answered))
"""


@dataclass(frozen=True)
class Process:
    pid: int
    command: str
    started: int  # clock ticks after boot: with the pid, names the process, not a reused pid

    def alive(self) -> bool:
        stat = _stat(self.pid)
        return stat is not None and int(stat[19]) == self.started and stat[0] not in ("Z", "X")

    def profile(self) -> Path:
        """Chromium's ``--user-data-dir``, as the host sees the path."""
        arguments = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0")
        flag = next(a for a in arguments if a.startswith(b"--user-data-dir="))
        return Path(os.fsdecode(flag.split(b"=", 1)[1]))


async def wait_for_exits(processes: list[Process]) -> None:
    """Return once every one of `processes` has exited (pidfds: woken by the kernel)."""
    for process in processes:
        try:
            pidfd = os.pidfd_open(process.pid)
        except ProcessLookupError:
            continue
        try:
            if process.alive():  # the pidfd is of this very process, not of a reused pid
                await anyio.wait_readable(pidfd)
        finally:
            os.close(pidfd)


def names(directory: Path) -> set[str]:
    return {entry.name for entry in directory.iterdir()}


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command (state first), or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def descendants(root: int) -> list[int]:
    """Every descendant of process `root`, as the host sees them."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(stat[1])
    found, frontier = [], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def browser_processes(root: int, commands: tuple[str, ...] = BROWSER_COMMANDS) -> list[Process]:
    """The browser's processes among `root`'s descendants (chromedriver, Chromium's)."""
    processes = []
    for pid in descendants(root):
        with contextlib.suppress(OSError, TypeError):
            command = Path(f"/proc/{pid}/comm").read_text().strip()
            if command.startswith(commands):
                processes.append(Process(pid, command, int(_stat(pid)[19])))  # type: ignore[index]
    return processes


def socket_inodes(processes: list[Process]) -> set[str]:
    inodes = set()
    for process in processes:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{process.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:["):
                        inodes.add(target[8:-1])
    return inodes


def inet_sockets(table_dir: str) -> list[tuple[str, int, str, str]]:
    """(protocol, local port, state, inode) of every TCP and UDP socket in a /proc/net view."""
    rows = []
    for protocol in ("tcp", "tcp6", "udp", "udp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"{table_dir}/{protocol}").read_text().splitlines()[1:]:
                fields = line.split()
                rows.append((protocol, int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]))
    return rows


@contextlib.asynccontextmanager
async def daemon_with_a_browser(
    dirs: CodexDirs, site: LocalSite, path: str = "/", extra: str = ""
) -> AsyncIterator[tuple[anyio.abc.Process, Path]]:
    """The daemon, whose agent has opened `path` of `site` in its browser; and its TMPDIR."""
    require_binaries()
    tmp = dirs.root / "daemon-tmp"
    tmp.mkdir()
    async with FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__browser_visit", {"url": site.url(path)}), Text("opened")
        )
        config = write_config(dirs, provider, TOOLS + extra)
        env = {**os.environ, "TMPDIR": str(tmp)}
        async with daemon_running(config, dirs.root / "state" / "chat.sock", env) as daemon:
            answer = await chat(config, "open the page")
            assert "opened" in answer
            second = json.dumps((await provider.wait_requests(2))[1]["input"])
            assert "Local page" in second, f"the page did not open: {second[-2000:]}"
            yield daemon, tmp


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    """A UDP socket on the host's 127.0.0.1, standing for a service a page must not reach."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.setblocking(False)
    yield listener
    listener.close()


@pytest.fixture
async def site(udp_listener: socket.socket) -> AsyncIterator[LocalSite]:
    """``/`` a page; ``/hang`` never answers (``entered`` is set once it is asked for);
    ``/webrtc`` runs ICE with a STUN server at the UDP listener and asks for ``/gathered``
    (which sets ``release``) when gathering is complete or, at the latest, 10 s after it
    started: Chromium sends its first STUN binding request at once (it reached the listener
    within the first second before the fix), and gathers nothing, ever, with no network."""
    local = LocalSite()
    local.page("/", PAGE)
    local.page("/webrtc", WEBRTC % udp_listener.getsockname()[1])

    async def hang(_request: web.Request) -> web.StreamResponse:
        local.entered.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def gathered(_request: web.Request) -> web.StreamResponse:
        local.release.set()
        return web.Response(text="ok")

    local.route("/hang", hang)
    local.route("/gathered", gathered)
    async with local:
        yield local


async def test_another_user_finds_and_reaches_no_port_of_the_daemons_browser(
    dirs: CodexDirs, site: LocalSite
) -> None:
    async with daemon_with_a_browser(dirs, site) as (daemon, _):
        processes = browser_processes(daemon.pid)
        inodes = socket_inodes(processes)
        driver = next(p for p in processes if p.command == "chromedriver")
        # The ports the browser listens on, wherever its network namespace is: chromedriver,
        # DevTools, and whatever else; as another user would try them on 127.0.0.1.
        listening = sorted(
            {
                port
                for _, port, state, inode in inet_sockets(f"/proc/{driver.pid}/net")
                if inode in inodes and state == "0A"
            }
        )
        on_the_host = [row for row in inet_sockets("/proc/net") if row[3] in inodes]
        # ... and the unix sockets the daemon reaches the sandbox by.
        inside = f"/proc/{driver.pid}/root/tmp"
        sockets = [f"{inside}/driver.sock"]
        probe = await anyio.run_process(
            [*AS_NOBODY, "/usr/bin/python3", "-I", "-c", PROBE, json.dumps(listening + sockets)],
            check=False,
        )
        owner = await anyio.run_process(
            ["/usr/bin/python3", "-I", "-c", PROBE, json.dumps(sockets)]
        )
    assert {"chromedriver", "chromium"} <= {p.command for p in processes}
    assert listening, "the browser listens on no port at all: the test would prove nothing"
    assert on_the_host == [], "the browser's sockets are in the host's /proc/net tables"
    assert probe.returncode == 0, probe.stderr.decode()
    answers = json.loads(probe.stdout)
    reached = {
        port: answers[str(port)]
        for port in listening
        if answers[str(port)] is not None
        and ("ChromeDriver" in answers[str(port)] or "Browser" in answers[str(port)])
    }
    assert reached == {}, "another user reached chromedriver or DevTools"
    assert {path: answers[path] for path in sockets if answers[path] is not None} == {}
    assert None not in json.loads(owner.stdout).values(), "the daemon's user reaches the socket"


async def test_a_daemon_killed_mid_page_leaves_no_browser_process_alive(
    dirs: CodexDirs, site: LocalSite
) -> None:
    require_binaries()
    async with FakeResponsesProvider() as provider:
        provider.script(
            FunctionCall("mcp__piano__browser_visit", {"url": site.url("/hang")}), Text("late")
        )
        config = write_config(dirs, provider, TOOLS)
        async with daemon_running(config, dirs.root / "state" / "chat.sock") as daemon:
            asking = await anyio.open_process(
                [*PIANO, "chat", "--config", str(config), "--message", "open the page"]
            )
            try:
                with anyio.fail_after(120):
                    await site.entered.wait()
                processes = browser_processes(daemon.pid)
                daemon.send_signal(signal.SIGKILL)
                await daemon.wait()
                with anyio.fail_after(30):
                    await wait_for_exits(processes)
            finally:
                asking.kill()
                await asking.wait()
    assert {"chromedriver", "chromium"} <= {p.command for p in processes}
    assert [p for p in processes if p.alive()] == []


async def test_a_normal_stop_leaves_no_profile_or_other_file_behind(
    dirs: CodexDirs, site: LocalSite
) -> None:
    async with daemon_with_a_browser(dirs, site) as (daemon, tmp):
        processes = browser_processes(daemon.pid)
        browser = next(p for p in processes if p.command == "chromium")
        profile = browser.profile()
        in_use = names(tmp)
    # daemon_running has stopped the daemon with SIGTERM, as a user does.
    left = names(tmp)
    assert not any(p.alive() for p in processes)
    assert not profile.exists(), f"the profile {profile} is left behind"
    assert left == set(), f"the browser left {left} in TMPDIR (in use: {in_use})"


async def test_a_page_cannot_send_webrtc_udp_to_a_listener_on_the_hosts_loopback(
    dirs: CodexDirs, site: LocalSite, udp_listener: socket.socket
) -> None:
    async with daemon_with_a_browser(dirs, site, "/webrtc"):
        with anyio.fail_after(90):
            await site.release.wait()  # ICE gathering, STUN included, has run its course
    received: list[bytes] = []
    with contextlib.suppress(BlockingIOError):
        while True:
            received.append(udp_listener.recv(2048))
    assert received == [], f"WebRTC reached the host: {received[:3]} (hits: {site.hits})"


SECRET = "a-compromised-browser-must-not-read-this"
CONTROL = "file:///usr/share/common-licenses/"


def credentials_of(pid: int) -> tuple[str, str]:
    """A process's real uid and effective capabilities, as the host sees them."""
    status = dict(
        line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return status["Uid"].split()[0], status["CapEff"]


def webdriver_pages(driver_socket: str, urls: list[str]) -> dict[str, str]:
    """What a second session of the daemon's own chromedriver (reached, as the daemon's user
    may, through its ``driver.sock``) shows at each of `urls`: what anything that took over
    the sandbox could read. Plain W3C WebDriver, no Piano code in between."""

    def call(method: str, path: str, body: object = None) -> dict[str, object]:
        connection = http.client.HTTPConnection("127.0.0.1", timeout=120)
        unix = socket.socket(socket.AF_UNIX)
        unix.settimeout(120)
        unix.connect(driver_socket)
        connection.sock = unix
        with contextlib.closing(connection):
            payload = None if body is None else json.dumps(body)
            connection.request(method, path, payload, {"Content-Type": "application/json"})
            answer = json.loads(connection.getresponse().read())
        assert isinstance(answer, dict)
        return answer

    chrome = {"args": ["--headless=new", "--no-sandbox", "--user-data-dir=/tmp/intruder"]}
    created = call(
        "POST",
        "/session",
        {
            "capabilities": {
                "alwaysMatch": {"goog:chromeOptions": {"binary": "/usr/bin/chromium", **chrome}}
            }
        },
    )
    session = created["value"]["sessionId"]  # type: ignore[index]
    pages = {}
    try:
        for url in urls:
            call("POST", f"/session/{session}/url", {"url": url})
            pages[url] = call("GET", f"/session/{session}/source")["value"]
    finally:
        call("DELETE", f"/session/{session}")
    return pages  # type: ignore[return-value]


async def test_a_taken_over_browser_is_no_root_and_reads_none_of_the_daemons_files(
    dirs: CodexDirs, site: LocalSite
) -> None:
    """The daemon's state (piano.db), a root-only file, /root and /work are not even there,
    and the browser runs as the sandbox's uid without capabilities, not as the daemon's root."""
    home = Path("/root") / f".piano-browser-probe-{os.getpid()}.txt"
    private = dirs.root / "root-only.txt"
    for path in (home, private):
        path.write_text(SECRET)
        path.chmod(0o600)
    try:
        async with daemon_with_a_browser(dirs, site) as (daemon, _):
            database = dirs.root / "state" / "piano.db"
            assert database.is_file()
            processes = browser_processes(daemon.pid)
            driver = next(p for p in processes if p.command == "chromedriver")
            credentials = set()
            for process in processes:
                with contextlib.suppress(OSError):  # a helper that has ended
                    credentials.add(credentials_of(process.pid))
            urls = [
                CONTROL,
                *(path.as_uri() for path in (database, home, private)),
                *("file:///root/", "file:///work/", f"{dirs.root.as_uri()}/", "file:///etc/shadow"),
            ]
            pages = await anyio.to_thread.run_sync(
                webdriver_pages, f"/proc/{driver.pid}/root/tmp/driver.sock", urls
            )
    finally:
        home.unlink()
    assert os.geteuid() == 0, "run the tests as root: the daemon drops to the sandbox's uid"
    assert credentials == {(str(BrowserConfig().sandbox_uid), "0000000000000000")}
    assert "GPL" in pages.pop(CONTROL), "file: URLs do not work at all: the test proves nothing"
    assert {url: page for url, page in pages.items() if SECRET in page or "SQLite" in page} == {}
    shown = {url for url, page in pages.items() if "ERR_FILE_NOT_FOUND" not in page}
    assert shown == set(), f"a taken-over browser sees {sorted(shown)}"


def test_the_probe_as_another_user_can_reach_a_port_it_should_reach() -> None:
    """The other-uid probe is honest: it does report a reachable DevTools-like server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    with subprocess.Popen(
        [*AS_NOBODY, "/usr/bin/python3", "-I", "-c", PROBE, json.dumps([port])],
        stdout=subprocess.PIPE,
    ) as probe:
        connection, _ = server.accept()
        connection.recv(4096)
        connection.sendall(b'HTTP/1.0 200 OK\r\n\r\n{"Browser": "Chrome/156"}')
        connection.close()
        output, _ = probe.communicate(timeout=30)
    server.close()
    assert "Browser" in json.loads(output)[str(port)]
