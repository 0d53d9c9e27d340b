"""Safe names and saving into a workspace inbox: user-supplied names never escape it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from piano.media import UnsafeInbox, human_size, image_data_url, safe_filename, save_file
from tests.media.pictures import png


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..", "file"),
        (".bashrc", "bashrc"),
        ("C:\\Users\\x\\evil.EXE", "evil.exe"),
        ("Quarterly report (final).pdf", "Quarterly_report_final.pdf"),
        ("отчёт.pdf", "отчёт.pdf"),
        ("$(rm -rf ~).sh", "rm_-rf.sh"),
        ("-rf", "rf"),
        ("photo\u202egpj.exe", "photo_gpj.exe"),
        (None, "file"),
        ("", "file"),
    ],
)
def test_a_user_supplied_name_becomes_one_plain_file_name(name: str | None, safe: str) -> None:
    assert safe_filename(name) == safe


def test_a_long_name_is_cut_to_the_limit_keeping_its_extension() -> None:
    name = safe_filename("é" * 300 + ".png", limit=100)
    assert name.endswith(".png")
    assert len(name.encode()) <= 100


@given(st.text(max_size=300))
def test_no_name_can_point_outside_the_folder_or_hide(name: str) -> None:
    safe = safe_filename(name)
    assert safe
    assert "/" not in safe
    assert "\\" not in safe
    assert "\x00" not in safe
    assert not safe.startswith((".", "-"))
    assert len(safe.encode()) <= 100
    assert all(ch.isalnum() or ch in "._-" for ch in safe)


def test_a_keyed_save_replaces_its_own_file_and_an_unkeyed_one_never_overwrites(
    tmp_path: Path,
) -> None:
    first = save_file(tmp_path, "../report.pdf", b"one", key="tg7")
    again = save_file(tmp_path, "../report.pdf", b"two", key="tg7")
    assert first.path == again.path == tmp_path / "inbox" / "tg7-report.pdf"
    assert again.relative == "inbox/tg7-report.pdf"
    assert again.path.read_bytes() == b"two"
    a = save_file(tmp_path, "notes.txt", b"a")
    b = save_file(tmp_path, "notes.txt", b"b")
    assert (a.relative, b.relative) == ("inbox/notes.txt", "inbox/notes-2.txt")
    assert (a.path.read_bytes(), b.path.read_bytes()) == (b"a", b"b")
    assert sorted(p.name for p in (tmp_path / "inbox").iterdir()) == [
        "notes-2.txt",
        "notes.txt",
        "tg7-report.pdf",
    ]


def test_an_inbox_that_is_a_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    os.symlink(elsewhere, workspace / "inbox")
    with pytest.raises(UnsafeInbox):
        save_file(workspace, "x.txt", b"x")
    assert list(elsewhere.iterdir()) == []


def test_sizes_read_as_people_read_them() -> None:
    assert [human_size(n) for n in (999, 12_345, 3_400_000, 25_300_000_000)] == [
        "999 B",
        "12 KB",
        "3.4 MB",
        "25 GB",
    ]


def test_an_image_becomes_a_data_url_and_other_files_do_not(tmp_path: Path) -> None:
    picture = tmp_path / "a.png"
    picture.write_bytes(png())
    url = image_data_url(picture)
    assert url is not None
    assert url.startswith("data:image/png;base64,iVBORw0KGgo")
    (tmp_path / "a.txt").write_text("no")
    assert image_data_url(tmp_path / "a.txt") is None
    assert image_data_url(tmp_path / "gone.png") is None
