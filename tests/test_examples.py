"""Every example runs as documented (``.venv/bin/python examples/<name>.py``) and does what it
says. One test function per example, so examples can be added without touching the others."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_example(name: str, timeout: float = 60.0) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_embed_asyncio_serves_the_ledger_and_links_and_monitors_see_its_crash() -> None:
    lines = run_example("embed_asyncio.py").splitlines()
    assert "client: deposit alice 30 -> ok" in lines
    assert "client: withdraw alice 10 -> 20" in lines
    assert "client: balance alice -> 20" in lines
    crash = "ValueError('alice cannot withdraw 100')"
    assert f"client: withdraw alice 100 -> error: the ledger exited with {crash}" in lines
    assert f"auditor: ledger went down with {crash}" in lines
    assert f"journal exited with {crash}" in lines
    assert "still alive: ['Auditor']" in lines
    assert lines[-1] == "system shut down"


def test_embed_sync_drives_actors_from_synchronous_code_and_leaves_no_thread() -> None:
    lines = run_example("embed_sync.py").splitlines()
    assert "notes: connected on thread actor:Notes#2" in lines
    assert "all notes: ['buy milk', 'call mum', 'water plants']" in lines
    assert "stats: 3 notes" in lines
    crash = "OperationalError('no such table: nowhere')"
    assert f"notes crashed: {crash}" in lines
    assert f"notes: closed the database ({crash})" in lines
    assert f"notes exited with {crash}; alive: False" in lines
    assert lines[-1] == "threads left: ['MainThread']"


TUTORIAL_RUNNER = """
import ast, asyncio, re, sys
text = open(sys.argv[1]).read()
blocks = re.findall(r"^```python\\n(.*?)^```", text, re.S | re.M)
async def main():
    namespace = {"__name__": "tutorial"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"docs/actors.md block {number}", "exec",
                       flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        result = eval(code, namespace)
        if asyncio.iscoroutine(result):
            await result
        print(f"block {number} ran")
asyncio.run(main())
print(f"{len(blocks)} blocks ran")
"""


def test_the_actors_tutorial_runs_block_by_block_as_one_session() -> None:
    result = subprocess.run(
        [sys.executable, "-c", TUTORIAL_RUNNER, str(ROOT / "docs" / "actors.md")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    last = result.stdout.splitlines()[-1]
    assert last.endswith("blocks ran")
    assert int(last.split()[0]) >= 10
