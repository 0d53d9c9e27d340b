"""Saved web token rotations: restored while the configured token is unchanged, and a file that
cannot be read fails closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from piano.web._auth import Tokens


def test_rotations_are_restored_for_the_same_configured_token_and_dropped_for_a_new_one(
    tmp_path: Path,
) -> None:
    path = tmp_path / "web-tokens.json"
    new = Tokens("configured-token", path=path).rotate(0.0)
    again = Tokens("configured-token", path=path)
    assert (again.check("configured-token"), again.check(new)) == ("expired", "ok")
    fresh = Tokens("another-configured-token", path=path)
    assert (fresh.check("another-configured-token"), fresh.check(new)) == ("ok", "invalid")


def test_a_token_file_that_cannot_be_read_fails_closed_and_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "web-tokens.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="delete the file to start over"):
        Tokens("configured-token", path=path)
