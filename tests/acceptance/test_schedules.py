"""Schedules through `piano run`, with the real codex and the fake provider: a schedule made with
``/schedule`` in `piano chat` (or in Telegram) runs on its own thread and its answer reaches
that chat; a bad cron is one sentence; a schedule survives a restart, and a run missed while
the daemon was down runs once, not once per missed time.

The downtime is made without waiting hours: with the daemon stopped, the test moves the
schedule's anchor and last run ten intervals into the past in the store, which is what ten
hours of downtime leave there."""

from __future__ import annotations

import json
import os
import re

import apsw
import pytest

from piano.store import StoreReader
from tests.acceptance.daemon import chat, daemon_running, write_config
from tests.acceptance.test_surfaces import terminal
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider, Hang, Text
from tests.telegram.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.anyio

HOUR = 3600.0


async def test_a_schedule_made_in_piano_chat_runs_and_its_answer_reaches_that_chat(
    dirs: CodexDirs,
) -> None:
    async with FakeResponsesProvider(default=Text("again fine")) as provider:
        provider.script(Text("the weather is fine"))
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with (
            daemon_running(config, state / "chat.sock"),
            terminal(config, "--conversation", "mine") as shell,
        ):
            await shell.until("Connected to thread")
            await shell.type("/schedule cron 61 * * * * zebra crossing")
            await shell.until(r"is not a cron expression[^\n]*\n")
            await shell.type("/schedule every 2s report the weather")
            made = await shell.until(r"Scheduled (s[0-9a-f]+): every 2s, next run")
            schedule_id = made.group(1)
            posted = await shell.until(
                rf"⏰ schedule {schedule_id} \(every 2s\): ([^\n]*)\n", timeout=120
            )
            await shell.type(f"/unschedule {schedule_id}")
            await shell.until(rf"Cancelled {schedule_id} \(every 2s\)\.")
            await shell.type("/schedules")
            await shell.until("No schedules.")
            await shell.type("/quit")
    assert posted.group(1) == "the weather is fine"
    refusal = re.search(r"[^\n]*is not a cron expression[^\n]*", shell.shown)
    assert refusal is not None
    assert refusal.group(0).strip().lstrip("· ").startswith("'61 * * * *' is not a cron"), refusal
    with StoreReader(state / "piano.db") as reader:
        [chat_thread] = reader.threads(surface="terminal")
        [run_thread] = reader.threads(surface="schedules")
        asked = [i.text for i in reader.interactions(run_thread.id)]
        said = [i.text for i in reader.interactions(chat_thread.id)]
    assert run_thread.conversation == schedule_id
    assert asked[0] == "report the weather"
    assert said == [], "a command or a scheduled answer became a message of the chat"
    assert not any("zebra crossing" in json.dumps(r) for r in provider.requests)


async def test_a_schedule_survives_a_restart_and_a_run_missed_during_downtime_runs_once(
    dirs: CodexDirs,
) -> None:
    log = dirs.root / "daemon.log"
    async with FakeResponsesProvider() as provider:
        config = write_config(dirs, provider)
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock"):
            made = await chat(config, "/schedule every 1h catch up", "--conversation", "mine")
        found = re.search(r"Scheduled (s[0-9a-f]+): every 1h", made)
        assert found is not None, made
        schedule_id = found.group(1)
        assert provider.requests == []  # not due yet: nothing ran
        # ten hours of downtime, as the store would show them
        with apsw.Connection(str(state / "piano.db")) as db:
            db.execute(
                "UPDATE schedules SET anchor = anchor - ?, last_due = anchor - ? WHERE id = ?",
                (10 * HOUR, 10 * HOUR, schedule_id),
            )
        held = Hang(then=Text("caught up on ten hours"))
        provider.script(held)
        with log.open("wb") as stderr:
            async with daemon_running(config, state / "chat.sock", stderr=stderr):
                await provider.wait_requests(1)  # the missed run started at once
                async with terminal(config, "--conversation", "mine") as shell:
                    await shell.until("Connected to thread")
                    held.release()
                    posted = await shell.until(
                        rf"⏰ schedule {schedule_id} \(every 1h\): ([^\n]*)\n", timeout=120
                    )
                    await shell.type("/schedules")
                    listed = await shell.until(rf"{schedule_id} · every 1h · next ([^·]+)·")
                    await shell.type("/quit")
    assert posted.group(1) == "caught up on ten hours"
    assert listed.group(1).strip(), "the schedule was not listed after the restart"
    with StoreReader(state / "piano.db") as reader:
        [run_thread] = reader.threads(surface="schedules")
        runs = reader.interactions(run_thread.id)
    assert [run.text for run in runs] == ["catch up"], "a missed run ran more than once"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [started] = [line for line in lines if line.get("event") == "schedules.run_started"]
    assert started["missed"] == 9
    assert len(provider.requests) == 1


async def test_a_schedule_made_in_telegram_posts_its_answer_to_that_telegram_chat(
    dirs: CodexDirs,
) -> None:
    admin = 1001
    async with FakeBotApi() as api, FakeResponsesProvider(default=Text("again")) as provider:
        provider.script(Text("the build is green"))
        section = f'[telegram]\nbase_url = "{api.base_url}"\nusers = {{ "{admin}" = "admin" }}\n'
        config = write_config(dirs, provider, section)
        env = {**os.environ, "PIANO_TELEGRAM_TOKEN": api.token}
        state = dirs.root / "state"
        async with daemon_running(config, state / "chat.sock", env=env):
            await api.wait_for(lambda c: c.method == "setMyCommands", timeout=60)
            await api.push_message(admin, "/schedule every 2s check the build", user_id=admin)
            made = await api.wait_for(
                lambda c: c.method == "sendMessage" and "Scheduled s" in str(c.params), timeout=60
            )
            found = re.search(r"Scheduled (s[0-9a-f]+)", str(made.params["text"]))
            assert found is not None
            schedule_id = found.group(1)
            posted = await api.wait_for(
                lambda c: (
                    c.method == "sendMessage" and f"⏰ schedule {schedule_id}" in str(c.params)
                ),
                timeout=120,
            )
            await api.push_message(admin, f"/unschedule {schedule_id}", user_id=admin)
            await api.wait_for(
                lambda c: c.method == "sendMessage" and "Cancelled" in str(c.params), timeout=60
            )
    text = str(posted.params["text"])
    assert f"⏰ schedule {schedule_id} (every 2s): the build is green" in text, text
    assert posted.params["chat_id"] == admin
