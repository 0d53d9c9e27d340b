"""Starting headless Chromium under chromedriver, offline-safe, and finding its processes.

`start_driver` gives selenium the driver path (`Service(executable_path=...)`), so Selenium
Manager is skipped and nothing is downloaded; ``SE_OFFLINE``/``SE_AVOID_STATS`` are set as
well. Every session gets a fresh profile directory, removed by `stop_driver`. The flags turn off
Chromium's background traffic (updates, sync, component updates, QUIC); see
shared/notes/ecosystem.md §2 for what each one removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import structlog
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

from piano.tools.browser._config import BrowserConfig

__all__ = ["browser_pids", "start_driver", "stop_driver"]

log = structlog.get_logger(__name__)

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
)
_BLOCK_DNS = "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost"


def _require(path: str, package: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise FileNotFoundError(
            f"{path} not found: install Debian's {package} (apt-get install {package}) "
            "or set its path in [tools.browser]"
        )


def start_driver(config: BrowserConfig, *, proxy_port: int | None = None) -> tuple[WebDriver, Path]:
    """A fresh headless Chromium session and its profile directory. With `proxy_port`, every
    request, loopback included, goes through the HTTP proxy on 127.0.0.1 at that port, and
    WebRTC may not send UDP around it."""
    _require(config.chromium, "chromium")
    _require(config.chromedriver, "chromium-driver")
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = Path(tempfile.mkdtemp(prefix="piano-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = config.chromium
    for flag in (*_FLAGS, f"--window-size={config.window_size}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    if config.block_dns:
        options.add_argument(_BLOCK_DNS)
    if proxy_port is not None:
        options.add_argument(f"--proxy-server=http://127.0.0.1:{proxy_port}")
        options.add_argument("--proxy-bypass-list=<-loopback>")
        options.add_argument("--force-webrtc-ip-handling-policy=disable_non_proxied_udp")
    for flag in config.extra_args:
        options.add_argument(flag)
    service = Service(executable_path=config.chromedriver, port=0, log_output=os.devnull)
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.set_page_load_timeout(config.page_load_timeout)
    driver.set_script_timeout(config.script_timeout)
    return driver, profile


def stop_driver(driver: WebDriver | None, profile: Path | None) -> None:
    """Quit the browser (killing what is left of it) and remove its profile. Never raises."""
    if driver is not None:
        pids = browser_pids(driver)
        try:
            driver.quit()
        except Exception as exc:
            log.warning("browser.quit_failed", error=type(exc).__name__)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 9)
    if profile is not None:
        shutil.rmtree(profile, ignore_errors=True)


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


def browser_pids(driver: WebDriver) -> list[int]:
    """Pids of the Chromium processes under this session's chromedriver (browser first)."""
    process = getattr(getattr(driver, "service", None), "process", None)
    if process is None:
        return []
    parents = _parents()
    found: list[int] = []
    frontier = [process.pid]
    while frontier:
        pid = frontier.pop(0)
        children = sorted(child for child, parent in parents.items() if parent == pid)
        found += children
        frontier += children
    return found
