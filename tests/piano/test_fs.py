"""`piano._fs.save_into`: the daemon's writes into a workspace never follow the agent's links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from piano._fs import UnsafePath, save_into


def test_a_folder_the_agent_replaced_by_a_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    os.symlink(elsewhere, workspace / "webfetch")
    with pytest.raises(UnsafePath):
        save_into(workspace, "webfetch", "page.md", b"x")
    assert list(elsewhere.iterdir()) == []


def test_a_symlink_planted_where_the_file_goes_is_replaced_or_skipped_never_written_through(
    tmp_path: Path,
) -> None:
    target = tmp_path / "host-file"
    target.write_bytes(b"precious")
    workspace = tmp_path / "workspace"
    (workspace / "inbox").mkdir(parents=True)
    os.symlink(target, workspace / "inbox" / "a.txt")
    os.symlink(target, workspace / "inbox" / "b.txt")
    replaced = save_into(workspace, "inbox", "a.txt", b"new")
    unique = save_into(workspace, "inbox", "b.txt", b"other", unique=True)
    assert target.read_bytes() == b"precious"
    assert (replaced.name, unique.name) == ("a.txt", "b-2.txt")
    assert not replaced.is_symlink()
    assert (replaced.read_bytes(), unique.read_bytes()) == (b"new", b"other")
    assert replaced.stat().st_mode & 0o777 == 0o600


def test_a_name_with_a_directory_in_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="single path component"):
        save_into(tmp_path, "inbox", "../escape", b"x")
