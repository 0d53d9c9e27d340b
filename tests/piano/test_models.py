"""``/model`` and ``/effort`` (`piano.models`) against the real codex binary and the fake
provider: the catalogue listed, the choice sent with every turn, bad names refused with the
list, the choice kept in the directory and read back by the conversation's next actor."""

from __future__ import annotations

from typing import Any

import pytest

from piano.commands import Commands
from piano.store import ConversationSettings
from piano.threads import conversation_status, new_conversation
from tests.fakes.responses_provider import Text
from tests.piano.conftest import Core

pytestmark = pytest.mark.anyio


async def _run(core: Core, text: str) -> str:
    reply = await Commands(core.config).run(
        text, system=core.system, key=core.key(), thread_id=None, user="tester", owner=True
    )
    assert reply is not None
    return reply


def _effort(request: dict[str, Any]) -> Any:
    return (request.get("reasoning") or {}).get("effort")


async def test_model_lists_codexs_catalogue_and_marks_the_conversations_model(core: Core) -> None:
    reply = await _run(core, "/model")
    assert "This conversation uses model: gpt-5.5" in reply
    assert "gpt-5.5 (current)" in reply
    assert "gpt-6-luna" in reply  # codex's bundled catalogue (model/list), not a list of ours
    assert "efforts:" in reply


async def test_the_chosen_model_and_effort_reach_the_provider_with_the_next_turn(
    core: Core,
) -> None:
    assert "now uses model: gpt-6-luna" in await _run(core, "/model gpt-6-luna")
    assert "effort: high" in await _run(core, "/effort high")
    core.provider.script(Text("answered"))
    _, interaction = await core.say("hi")
    assert (await core.turn_completed(interaction)).status == "completed"
    [request] = await core.provider.wait_requests(1)
    assert request["model"] == "gpt-6-luna"
    assert _effort(request) == "high"
    status = await conversation_status(await core.thread_ref())
    assert (status.model, status.effort) == ("gpt-6-luna", "high")


async def test_an_unknown_model_is_one_sentence_listing_the_offered_ones(core: Core) -> None:
    reply = await _run(core, "/model no-such-model")
    assert reply.startswith("Unknown model 'no-such-model'; the provider offers: ")
    assert "gpt-5.5" in reply
    assert "\n" not in reply
    status = await conversation_status(await core.thread_ref())
    assert status.model == "gpt-5.5"


async def test_an_effort_the_model_does_not_accept_is_refused_with_the_accepted_ones(
    core: Core,
) -> None:
    reply = await _run(core, "/effort ludicrous")
    assert reply.startswith("Unknown effort 'ludicrous' for gpt-5.5; it accepts: ")
    assert "high" in reply
    assert (await conversation_status(await core.thread_ref())).effort is None


async def test_the_choice_is_kept_in_the_directory_and_outlives_the_thread(core: Core) -> None:
    await _run(core, "/model gpt-6-luna")
    await _run(core, "/effort low")
    assert core.directory.chosen[core.key()] == ConversationSettings(
        model="gpt-6-luna", effort="low"
    )
    await new_conversation(core.threads, core.key())  # a new thread and a new actor
    status = await conversation_status(await core.thread_ref())
    assert (status.model, status.effort) == ("gpt-6-luna", "low")
    assert "model: gpt-5.5" in await _run(core, "/model default")


async def test_effort_default_is_the_models_own_default_sent_explicitly(core: Core) -> None:
    await _run(core, "/effort high")
    reply = await _run(core, "/effort default")
    status = await conversation_status(await core.thread_ref())
    assert status.effort not in (None, "high")  # codex would keep "high" for later turns
    assert f"effort: {status.effort}" in reply
