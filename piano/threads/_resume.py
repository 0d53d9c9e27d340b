"""How to pick a thread up on another surface: the lines every surface shows (takopi's resume
lines). One function, so the terminal, Telegram and the web say the same thing."""

from __future__ import annotations

__all__ = ["resume_lines", "web_link"]


def web_link(thread_id: str, host: str, port: int) -> str:
    """The web chat's address of a thread: the page opens the thread named in its fragment
    (``#thread=ID``); the access token is asked for, never put in the link."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/chat#thread={thread_id}"


def resume_lines(
    thread_id: str, *, codex_thread_id: str | None = None, web: str | None = None
) -> list[str]:
    """The ways to continue `thread_id` elsewhere, one line each: the terminal command, the
    web link (`web`, when the web surface runs) and, for a Codex thread, `codex resume` with
    codex's own id (which is not Piano's)."""
    lines = [f"terminal: piano chat --thread {thread_id}"]
    if web is not None:
        lines.append(f"web: {web}")
    if codex_thread_id:
        lines.append(f"codex: codex resume {codex_thread_id}")
    return lines
