"""An OpenAI agent's conversation chooses its model and reasoning effort (``/model``,
``/effort``): the provider's ``GET /v1/models`` is what it may choose from, the choice goes
with every request of its own agent, and it is kept in the store for the next actor."""

from __future__ import annotations

import asyncio

import pytest

from piano.store import ConversationSettings
from piano.threads import ModelsUnavailable, configure, conversation_status, list_models
from tests.agents.conftest import Start
from tests.agents.fake_openai import Text

pytestmark = pytest.mark.anyio


async def test_the_models_listed_are_the_providers(agents: Start) -> None:
    world = await agents()
    world.fake.models = ("fake-model", "fake-large")
    choices = await list_models(await world.thread())
    assert [choice.id for choice in choices] == ["fake-large", "fake-model"]


async def test_a_provider_refusing_the_list_is_one_sentence(agents: Start) -> None:
    world = await agents(key="sk-wrong")
    with pytest.raises(ModelsUnavailable, match=r"the provider did not list its models: .*401"):
        await list_models(await world.thread())


@pytest.mark.parametrize("api", ["responses", "chat"])
async def test_the_chosen_model_and_effort_go_with_each_request_and_survive_the_actor(
    agents: Start, api: str
) -> None:
    world = await agents(api=api)
    world.fake.models = ("fake-model", "fake-large")
    thread = await world.thread()
    await configure(thread, ConversationSettings(model="fake-large", effort="high"))
    world.fake.script(Text("big answer"))
    _, interaction = await world.say("hi")
    assert (await world.done(interaction)).status == "completed"
    [request] = world.fake.requests
    assert request.body["model"] == "fake-large"
    if api == "responses":
        assert request.body["reasoning"] == {"effort": "high"}
    else:
        assert request.body["reasoning_effort"] == "high"
    stored = await asyncio.to_thread(
        lambda: world.reader().conversation_settings("test", "c1", "concierge")
    )
    assert stored == ConversationSettings(model="fake-large", effort="high")
    await thread.stop()  # the next actor reads the choice back from the store
    status = await conversation_status(await world.thread())
    assert (status.model, status.effort) == ("fake-large", "high")
