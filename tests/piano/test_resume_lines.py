"""`resume_lines`: the one derivation of how to continue a thread elsewhere, which every
surface shows."""

from __future__ import annotations

from piano.surfaces.terminal._ui import Approvals, ShowResume, interpret
from piano.threads import resume_lines, web_link
from schemas import chat


def test_a_codex_thread_with_the_web_surface_has_the_terminal_web_and_codex_lines() -> None:
    lines = resume_lines(
        "t-1", codex_thread_id="019a-codex", web=web_link("t-1", "127.0.0.1", 8470)
    )
    assert lines == [
        "terminal: piano chat --thread t-1",
        "web: http://127.0.0.1:8470/chat#thread=t-1",
        "codex: codex resume 019a-codex",
    ]


def test_without_the_web_surface_or_a_codex_thread_only_the_terminal_line_is_given() -> None:
    assert resume_lines("t-2") == ["terminal: piano chat --thread t-2"]
    assert resume_lines("t-2", codex_thread_id="") == ["terminal: piano chat --thread t-2"]


def test_an_ipv6_web_host_is_bracketed_in_the_link() -> None:
    assert web_link("t-3", "::1", 9000) == "http://[::1]:9000/chat#thread=t-3"


def test_resume_is_the_terminal_clients_own_and_status_asks_the_daemon() -> None:
    assert interpret("/resume", Approvals()) == ShowResume()
    assert interpret("/status", Approvals()) == chat.Status()  # the daemon's answer
