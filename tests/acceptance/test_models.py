"""Models and reasoning effort per conversation through `piano run` (the real codex, the fake
provider): ``/model`` and ``/effort`` typed in `piano chat`, the web chat's API and Telegram
are run by the daemon; the provider receives the chosen model and effort with every request of
that conversation, also after the daemon restarted; an unknown model is one sentence with the
list; Telegram's ``/status`` shows the choice."""

from __future__ import annotations

import aiohttp
import pytest

from tests.acceptance.daemon import chat, daemon_running
from tests.acceptance.test_surfaces import AUTH, WEB_ENV, web_base, web_config
from tests.fakes.responses_provider import CodexDirs, FakeResponsesProvider
from tests.telegram.fake_bot_api import FakeBotApi

pytestmark = pytest.mark.anyio

ADMIN = 1001


async def test_the_chosen_model_and_effort_reach_the_provider_on_every_surface_and_after_a_restart(
    dirs: CodexDirs,
) -> None:
    async with FakeBotApi() as api, FakeResponsesProvider() as provider:
        section = f'[telegram]\nbase_url = "{api.base_url}"\nusers = {{ "{ADMIN}" = "admin" }}\n'
        config = web_config(dirs, provider, section)
        env = {**WEB_ENV, "PIANO_TELEGRAM_TOKEN": api.token}
        socket = dirs.root / "state" / "chat.sock"
        async with (
            daemon_running(config, socket, env=env),
            aiohttp.ClientSession() as session,
        ):
            listing = await chat(config, "/model")
            unknown = await chat(config, "/model no-such-model")
            switched = await chat(config, "/model gpt-6-luna")
            effort = await chat(config, "/effort high")
            status = await chat(config, "/status")
            await chat(config, "hello")
            body = {"text": "/effort low", "conversation": "web-one"}
            async with session.post(
                f"{web_base(config)}/api/commands", json=body, headers=AUTH
            ) as ran:
                assert ran.status == 200, await ran.text()
                web = (await ran.json())["reply"]
            await api.push_message(ADMIN, "/model gpt-5.6-luna", user_id=ADMIN)
            await api.wait_for(
                lambda c: c.method == "sendMessage" and "gpt-5.6-luna" in str(c.params),
                timeout=60,
            )
            await api.push_message(ADMIN, "/status", user_id=ADMIN)
            telegram_status = await api.wait_for(
                lambda c: c.method == "sendMessage" and "Model:" in str(c.params.get("text")),
                timeout=60,
            )
            before_restart = len(provider.requests)
        async with daemon_running(config, socket, env=env):
            await chat(config, "after the restart")
    assert "gpt-5.5 (current)" in listing
    assert "gpt-6-luna" in listing
    assert unknown.strip().startswith("Unknown model 'no-such-model'; the provider offers: ")
    assert "now uses model: gpt-6-luna" in switched
    assert "effort: high" in effort
    assert "model: gpt-6-luna, effort: high" in status  # the terminal's /status
    assert "piano chat --thread" in status
    assert "model: gpt-5.5, effort: low" in web  # the web conversation's own choice
    assert "Model: <b>gpt-5.6-luna</b>" in str(telegram_status.params["text"])
    assert before_restart >= 1
    assert len(provider.requests) > before_restart
    for request in provider.requests:  # only the terminal conversation ran turns
        assert request["model"] == "gpt-6-luna"
        assert request["reasoning"]["effort"] == "high"
