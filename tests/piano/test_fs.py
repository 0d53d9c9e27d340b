"""`piano._fs`: the daemon's reads and writes where the agent can write never follow its links."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from piano._fs import UnsafePath, read_from, save_into


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


def test_a_deep_folder_is_read_and_written_through_no_symlink_at_any_depth(
    tmp_path: Path,
) -> None:
    home = tmp_path / "codex-home"
    written = save_into(home, "sessions/2026/12/05", "rollout.jsonl", b"line\n")
    assert written == home.resolve() / "sessions/2026/12/05/rollout.jsonl"
    assert read_from(home, "sessions/2026/12/05", "rollout.jsonl") == b"line\n"
    assert (home / "sessions" / "2026").stat().st_mode & 0o777 == 0o700
    assert read_from(home, "sessions/2026/12/06", "rollout.jsonl") is None

    secret = tmp_path / "piano.db"
    secret.write_bytes(b"every conversation")
    os.symlink(secret, home / "sessions/2026/12/05/linked.jsonl")
    with pytest.raises(UnsafePath, match="symlink"):
        read_from(home, "sessions/2026/12/05", "linked.jsonl")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "05").mkdir(parents=True)
    (elsewhere / "05" / "rollout.jsonl").write_bytes(b"not yours")
    os.rename(home / "sessions/2026/12", tmp_path / "moved")
    os.symlink(elsewhere, home / "sessions/2026/12")
    with pytest.raises(UnsafePath):
        read_from(home, "sessions/2026/12/05", "rollout.jsonl")
    with pytest.raises(UnsafePath):
        save_into(home, "sessions/2026/12/05", "rollout.jsonl", b"x")
    assert (elsewhere / "05" / "rollout.jsonl").read_bytes() == b"not yours"
    os.mkfifo(home / "sessions/2026/fifo")
    with pytest.raises(UnsafePath, match="regular"):
        read_from(home, "sessions/2026", "fifo")
