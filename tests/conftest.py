"""Shared test configuration: every async test runs on asyncio through AnyIO's pytest plugin;
`dirs` gives a test its own CODEX_HOME, state and workspace directories, removed afterwards;
`browser` is a headless Chromium for the web pages' tests (one per module).

The whole run gets a fresh, empty ``HOME`` (removed at the end). Defaults that live under the
home directory (`~/piano-workspace`, the jails' root, the console's history) then land in a
folder the run created instead of the user's own, and the login shells codex starts for its
commands and shell snapshots read no profile of the user's: a profile that is slow or waits on
a lock (pyenv's rehash lock, left behind by a killed shell, makes every login shell wait 60 s)
would otherwise decide whether codex's tests pass.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from piano.tools.browser import BrowserConfig, start_browser
from tests.fakes.responses_provider import CodexDirs, make_codex_dirs

_real_home = os.environ.get("HOME")


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HOME"] = tempfile.mkdtemp(prefix="piano-test-home-")


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(os.environ["HOME"], ignore_errors=True)
    if _real_home is not None:
        os.environ["HOME"] = _real_home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dirs() -> Iterator[CodexDirs]:
    made = make_codex_dirs()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Piano's own headless Chromium set-up (the browser tool's sandbox and guard, allowed to
    reach 127.0.0.1), with DNS blocked so that nothing but 127.0.0.1 and localhost resolves;
    fails with an install hint if missing."""
    sandboxed = start_browser(BrowserConfig(block_dns=True, allowed_networks=["127.0.0.1/32"]))
    try:
        assert sandboxed.driver is not None
        yield sandboxed.driver
    finally:
        sandboxed.close()
