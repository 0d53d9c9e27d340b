"""The status message's pacing, driven with a fake clock: coalesced, rate-limited, final."""

from __future__ import annotations

import itertools
import random

from piano.surfaces.telegram import ChatPacer, TurnProgress
from schemas import events as ev


class Chat:
    """Drives a ChatPacer like the surface does, with Telegram answering after `latency`."""

    def __init__(self, interval: float, latency: float = 0.05) -> None:
        self.pacer = ChatPacer(interval)
        self.latency = latency
        self.now = 0.0
        self.timer: float | None = None
        self.answer_at: float | None = None
        self.edits: list[tuple[float, str]] = []
        self.progress = TurnProgress()
        self.shown: str | None = None
        self.retry_after: dict[int, float] = {}

    def changed(self) -> None:
        if self.progress.render() != self.shown:
            self.pacer.mark("status")
        self.pump()

    def pump(self) -> None:
        key, delay = self.pacer.poll(self.now)
        if key is not None:
            self.pacer.begin(key, self.now)
            self.answer_at = self.now + self.latency
        elif delay is not None and self.timer is None:
            self.timer = self.now + delay

    def advance(self, to: float) -> None:
        """Let time pass, firing the timer and Telegram's answers in order."""
        while True:
            due = [t for t in (self.timer, self.answer_at) if t is not None and t <= to]
            if not due:
                break
            self.now = min(due)
            if self.answer_at == self.now:
                self.answer_at = None
                attempt = len(self.edits)
                retry = self.retry_after.pop(attempt, None)
                if retry is None:
                    self.shown = self.progress.render()
                    self.edits.append((self.now - self.latency, self.shown))
                self.pacer.done(self.now, retry)
                if self.progress.render() != self.shown:
                    self.pacer.mark("status")
                self.pump()
            else:
                self.timer = None
                self.pump()
        self.now = to


def _command(i: int, status: str = "in_progress") -> ev.Item:
    return ev.Item(id=f"c{i}", kind="command", command=f"echo {i}", status=status)  # type: ignore[arg-type]


def test_a_flood_of_events_is_coalesced_into_edits_at_most_one_per_interval() -> None:
    chat = Chat(interval=1.0)
    rng = random.Random(7)
    t = 0.0
    for i in range(2000):
        t += rng.uniform(0.0, 0.01)
        chat.advance(t)
        chat.progress.item_started(_command(i))
        chat.changed()
        chat.progress.item_completed(_command(i, "completed"))
        chat.changed()
    chat.progress.finish("completed")
    chat.changed()
    chat.advance(t + 10)
    starts = [at for at, _ in chat.edits]
    assert all(b - a >= 1.0 - 1e-9 for a, b in itertools.pairwise(starts))
    assert len(chat.edits) <= t / 1.0 + 2
    assert len(chat.edits) >= t / 1.0 - 1
    assert chat.edits[-1][1] == chat.progress.render()
    assert chat.edits[-1][1].startswith("<b>✅ Done")
    assert "echo 1999" in chat.edits[-1][1]


def test_retry_after_holds_every_edit_until_it_has_passed_and_the_final_state_still_lands() -> None:
    chat = Chat(interval=1.0)
    chat.retry_after[1] = 5.0
    for i in range(40):
        chat.advance(i * 0.1)
        chat.progress.item_started(_command(i))
        chat.changed()
    chat.progress.finish("failed", "boom")
    chat.changed()
    chat.advance(60)
    starts = [at for at, _ in chat.edits]
    assert starts[0] == 0.0
    assert starts[1] >= 1.0 + 0.05 + 5.0
    assert chat.edits[-1][1] == chat.progress.render()
    assert chat.edits[-1][1].startswith("<b>❌ Failed: boom")


def test_an_unchanged_status_is_never_edited_again() -> None:
    chat = Chat(interval=1.0)
    chat.progress.item_started(_command(1))
    chat.changed()
    chat.advance(5)
    for _ in range(10):
        chat.changed()
        chat.advance(chat.now + 2)
    assert len(chat.edits) == 1


def test_the_status_shows_an_emoji_per_kind_and_short_previews() -> None:
    progress = TurnProgress(preview_chars=20, max_steps=4)
    items = [
        ev.Item(id="r", kind="reasoning", text="pondering the question"),
        ev.Item(id="c", kind="command", command="ls -la " + "x" * 100, output="a\nb\n" * 50),
        ev.Item(id="f", kind="file_change", changes=[ev.FileChange(path="a.py", kind="add")]),
        ev.Item(id="t", kind="tool_call", tool="web_fetch", arguments='{"url": "x"}'),
        ev.Item(id="s", kind="web_search", text="piano <tuning>"),
    ]
    for item in items:
        progress.item_completed(item)
    text = progress.render()
    assert text.startswith("<b>⏳ Working…</b>\n… 1 earlier steps")
    assert "💻 <code>ls -la xxxxxxxxxxxx…</code>\n    ↳ …a b a b a b a b a b" in text
    assert "📝 <code>a.py</code>" in text
    assert "🔧 <code>web_fetch" in text
    assert "🔎 <code>piano &lt;tuning&gt;</code>" in text
    assert "🤔" not in text
