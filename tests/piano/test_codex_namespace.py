"""The mount namespace codex runs in (`piano.codex._namespace`), with the real bubblewrap: what
is hidden is empty, what is kept inside it is there, and the defaults keep the jails out of the
default workspace. The daemon-level proof is tests/acceptance/test_agent_reach.py."""

from __future__ import annotations

import subprocess
from pathlib import Path

from piano.codex._namespace import hiding_prefix
from piano.config import load_config


def _seen(prefix: list[str], *paths: Path) -> str:
    listing = ["ls", "-A", *map(str, paths)]
    done = subprocess.run([*prefix, *listing], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_hidden_directory_is_empty_but_what_is_kept_inside_it_and_its_own_hidden_parts_hold(
    tmp_path: Path,
) -> None:
    state, home, work, jails = (tmp_path / name for name in ("s", "s/home", "s/ws", "s/ws/jails"))
    for path in (state, home, work, jails):
        path.mkdir(parents=True)
        (path / f"in-{path.name}").write_text(path.name)
    prefix = hiding_prefix(hidden=[state, jails], kept=[home, work, tmp_path])
    seen = _seen(prefix, state, home, work, jails, tmp_path)
    assert "in-s\n" not in seen, "the hidden directory's own file is visible"
    assert "in-home" in seen, "a kept directory inside the hidden one is gone"
    assert "in-ws" in seen, "a kept directory inside the hidden one is gone"
    assert "in-jails" not in seen, "a hidden directory inside a kept one is visible"
    assert str(tmp_path.resolve()) not in prefix, "a kept directory outside the hidden is bound"


def test_the_default_jail_root_lies_outside_the_default_workspace() -> None:
    config = load_config(None, environ={})
    root = Path(config.tools.jail.workspace_root).expanduser()
    workspace = Path(config.agents["default"].workspace).expanduser()
    assert not root.is_relative_to(workspace)
    assert not workspace.is_relative_to(root)
