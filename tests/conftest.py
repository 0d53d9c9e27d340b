"""Shared test configuration: every async test runs on asyncio through AnyIO's pytest plugin;
`dirs` gives a test its own CODEX_HOME, state and workspace directories, removed afterwards."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.fakes.responses_provider import CodexDirs, make_codex_dirs


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def dirs() -> Iterator[CodexDirs]:
    made = make_codex_dirs()
    yield made
    shutil.rmtree(made.root, ignore_errors=True)
