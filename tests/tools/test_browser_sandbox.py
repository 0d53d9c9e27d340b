"""The browser's sandbox on its own (the daemon-level attacks are in
tests/acceptance/test_browser.py): a network of its own with only loopback, none of the
daemon's environment, nothing left after close, death with the thread that started it, and a
clear error when it cannot start."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from piano.tools.browser import (
    Browser,
    BrowserActionError,
    BrowserConfig,
    CurrentUrl,
    ReadText,
    RunScript,
    Visit,
    start_browser,
)
from tests.acceptance.test_browser import Process, browser_processes, wait_for_exits
from tests.test_webfetch import LocalSite
from tests.tools.conftest import Tools, require_binaries

CONFIG = BrowserConfig(block_dns=True, allowed_networks=["127.0.0.1/32"])


def processes(browser: Browser) -> list[Process]:
    """The sandbox's bubblewrap and every browser process, as the host sees them."""
    assert browser.sandbox is not None
    found = []
    for pid in (browser.sandbox.pid, *browser.pids()):
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a helper that ended
            raw = Path(f"/proc/{pid}/stat").read_bytes()
            started = int(raw[raw.rfind(b")") + 2 :].decode().split()[19])
            found.append(Process(pid, Path(f"/proc/{pid}/comm").read_text().strip(), started))
    return found


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> Iterator[Browser]:
    require_binaries()
    monkeypatch.setenv("PIANO_TELEGRAM_TOKEN", "secret-the-browser-must-not-see")
    started = start_browser(CONFIG)
    yield started
    started.close()


def test_the_browser_has_a_network_of_its_own_with_only_loopback(browser: Browser) -> None:
    chromium = browser.pids()[0]
    interfaces = Path(f"/proc/{chromium}/net/dev").read_text().splitlines()[2:]
    assert os.readlink(f"/proc/{chromium}/ns/net") != os.readlink("/proc/self/ns/net")
    assert [line.split(":")[0].strip() for line in interfaces] == ["lo"]


def test_the_browser_gets_none_of_the_daemons_environment(browser: Browser) -> None:
    environments = {}
    for pid in browser.pids():
        with contextlib.suppress(ProcessLookupError, FileNotFoundError):  # a helper that ended
            environments[pid] = Path(f"/proc/{pid}/environ").read_bytes()
    assert browser.pids()[0] in environments
    assert [pid for pid, env in environments.items() if b"PIANO_TELEGRAM_TOKEN" in env] == []
    assert not any(b"secret-the-browser-must-not-see" in env for env in environments.values())


def test_the_sandboxs_only_socket_is_owner_only_and_the_proxy_has_no_address(
    browser: Browser,
) -> None:
    inside = Path(f"/proc/{browser.pids()[0]}/root/tmp")
    assert inside.stat().st_mode & 0o777 == 0o700
    driver_socket = (inside / "driver.sock").stat()
    assert driver_socket.st_mode & 0o077 == 0
    assert driver_socket.st_uid == CONFIG.sandbox_uid
    assert sorted(p.name for p in inside.glob("*.sock")) == ["driver.sock"]


def test_the_browser_runs_as_a_uid_of_its_own_without_capabilities(browser: Browser) -> None:
    """Not the daemon's root: a file only root may read stays unread even if it were in view."""
    assert os.geteuid() == 0, "run the tests as root: the daemon drops to the sandbox's uid"
    expected = {str(CONFIG.sandbox_uid)}
    for pid in browser.pids():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            status = dict(
                line.split(":\t", 1)
                for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            )
            assert set(status["Uid"].split()) == expected
            assert set(status["Gid"].split()) == expected
            assert status["Groups"].split() == []  # not root's supplementary groups
            assert int(status["CapEff"], 16) == 0
            assert int(status["CapPrm"], 16) == 0


SECRET = "the-sandbox-must-not-see-this"


@pytest.fixture
def secrets(tmp_path: Path) -> Iterator[list[Path]]:
    """Files a compromised browser would want: root's 0600 file in the host's /tmp, a state
    dir's piano.db, a file under /work (the worktree) and one under /root."""
    private = tmp_path / "root-only.txt"
    database = tmp_path / "state" / "piano.db"
    database.parent.mkdir()
    work = Path(__file__).resolve().parent / f".sandbox-probe-{os.getpid()}.txt"
    home = Path("/root") / f".piano-sandbox-probe-{os.getpid()}.txt"
    made = [private, database, work, home]
    for path in made:
        path.write_text(SECRET)
        path.chmod(0o600)
    yield made
    for path in made:
        path.unlink()


def test_a_page_cannot_read_the_hosts_files_through_file_urls(
    browser: Browser, secrets: list[Path]
) -> None:
    """The driver itself (not the tool, which refuses file:) goes where a compromised
    renderer would look; /usr, which Chromium needs, is the control that file: works."""
    driver = browser.driver
    assert driver is not None
    driver.get("file:///usr/share/common-licenses/")
    assert "GPL" in driver.page_source, "file: URLs do not work at all: the test proves nothing"
    seen = {}
    for url in [
        *(path.as_uri() for path in secrets),
        *("file:///root/", "file:///work/", "file:///home/", "file:///var/lib/"),
        *("file:///etc/shadow", "file:///etc/passwd", "file:///etc/ssl/private/"),
        f"file://{Path.cwd()}/",
    ]:
        driver.get(url)
        seen[url] = driver.page_source
    assert {url: page for url, page in seen.items() if SECRET in page} == {}
    listed = {url: page for url, page in seen.items() if "ERR_FILE_NOT_FOUND" not in page}
    assert listed == {}, f"the sandbox shows {sorted(listed)}"


def test_a_closed_browser_leaves_no_process_no_thread_and_no_file() -> None:
    require_binaries()
    browser = start_browser(CONFIG)
    running = processes(browser)
    profile = Path(f"/proc/{browser.pids()[0]}/root/tmp/profile")
    profile_existed = profile.is_dir()
    browser.close()
    browser.close()  # a second close does nothing
    assert profile_existed
    assert [p for p in running if p.alive()] == []
    assert [t for t in threading.enumerate() if t.name == "browser-proxy"] == []


def test_a_browser_whose_thread_ends_without_closing_it_dies_with_that_thread() -> None:
    """An actor killed without `terminate` ends its thread; the browser must not outlive it."""
    require_binaries()
    started: list[Browser] = []
    owner = threading.Thread(target=lambda: started.append(start_browser(CONFIG)))
    owner.start()
    owner.join(120)
    [browser] = started
    running = processes(browser)

    async def exits() -> None:
        with anyio.fail_after(30):
            await wait_for_exits(running)

    anyio.run(exits)
    proxy_threads = [t for t in threading.enumerate() if t.name == "browser-proxy"]
    for thread in proxy_threads:
        thread.join(30)
    browser.close()
    assert [p for p in running if p.alive()] == []
    assert [t for t in proxy_threads if t.is_alive()] == []


def test_a_browser_that_cannot_start_says_so_and_leaves_nothing_running() -> None:
    require_binaries()
    before = {t.ident for t in threading.enumerate()}
    with pytest.raises(RuntimeError, match=r"did not start.*/bin/false exited with status 1"):
        start_browser(BrowserConfig(chromedriver="/bin/false", start_timeout=30))
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= before


def test_a_killed_chromedriver_takes_the_whole_sandbox_with_it(browser: Browser) -> None:
    """Chromium must not linger, driverless, once its chromedriver is gone."""
    running = processes(browser)
    assert browser.sandbox is not None
    [driver] = browser_processes(browser.sandbox.pid, ("chromedriver",))
    os.kill(driver.pid, signal.SIGKILL)

    async def exits() -> None:
        with anyio.fail_after(30):
            await wait_for_exits(running)

    anyio.run(exits)
    assert [p for p in running if p.alive()] == []


@pytest.mark.anyio
async def test_the_agents_browser_tools_read_no_host_file(
    tools: Tools, site: LocalSite, secrets: list[Path]
) -> None:
    """Through the Toolbox, as the agent's calls arrive: a file: visit is refused, and a page
    that fetches a file: URL or sends itself there stays where it was and reads nothing.
    (Chromium's own rule for http pages refuses those two; the sandbox's view, tested above
    through the driver, is the wall behind it.)"""
    box = tools.toolbox
    read: list[object] = []
    for secret in secrets:
        with pytest.raises(BrowserActionError, match="only http"):
            await box.browse("thread-a", Visit(secret.as_uri()))
        await box.browse("thread-a", Visit(site.url("/")))
        read.append(
            await box.browse(
                "thread-a",
                RunScript(
                    "return fetch(arguments[0]).then(r => r.text(), e => 'refused: ' + e)",
                    (secret.as_uri(),),
                ),
            )
        )
        await box.browse(
            "thread-a", RunScript("window.location.href = arguments[0]", (secret.as_uri(),))
        )
        read.append(await box.browse("thread-a", ReadText()))
        read.append((await box.browse("thread-a", CurrentUrl())).url)
    assert not any(SECRET in str(seen) for seen in read), read
    assert read[2::3] == [site.url("/")] * len(secrets)


@pytest.mark.parametrize("uid", [0, 65534, -1, 2**31])
def test_a_sandbox_uid_that_is_root_nobody_or_out_of_range_is_refused_with_a_reason(
    uid: int,
) -> None:
    with pytest.raises(ValueError, match=r"tools\.browser\.sandbox_uid must be a uid of its own"):
        BrowserConfig(sandbox_uid=uid)
