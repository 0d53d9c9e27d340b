"""The supervision examples run and do what their docstrings say."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.anyio


def plain_lines(output: str) -> list[str]:
    """The example's own prints (structlog's reports start with a timestamp)."""
    return [line for line in output.splitlines() if line and not line.startswith(("20", " ", "\t"))]


def test_the_supervision_tree_example_restarts_by_rest_for_one_and_gives_up() -> None:
    result = subprocess.run(
        [sys.executable, "examples/supervision_tree.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    starts = [line.strip() for line in result.stdout.splitlines() if line.endswith(" started")]
    assert starts == [
        "database started",
        "cache started",
        "cache started",
        "database started",
        "cache started",
    ]
    assert "the supervisor gave up with reason 'shutdown'" in result.stdout


async def test_the_application_example_restarts_with_backoff_and_stops_cleanly_on_sigterm() -> None:
    process = await anyio.open_process(
        [sys.executable, "examples/supervision_application.py"],
        cwd=ROOT,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    seen = ""
    assert process.stdout is not None
    try:
        with anyio.fail_after(20):
            while seen.count("flaky started") < 2:
                seen += (await process.stdout.receive()).decode()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            async for chunk in process.stdout:
                seen += chunk.decode()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0
    lines = plain_lines(seen)
    assert lines[-2:] == ["flaky stopping ('shutdown')", lines[-1]]
    assert lines[-1].startswith("ticker stopping after")
