"""Bad input gets a clear error in the caller and the pipeline keeps running: a key function
that raises, an unhashable key, an unknown batcher, invalid options."""

from __future__ import annotations

from typing import Any

import pytest

from actors import ActorSystem
from actors.pipeline import (
    Batchers,
    Message,
    PartitionKeyError,
    Pipeline,
    Processors,
    RateLimit,
    Retry,
    UnknownBatcher,
    push,
    push_many,
    statistics,
    test_message,
)

pytestmark = pytest.mark.anyio


def key_of(message: Message) -> Any:
    return message.data["key"]


async def test_a_key_function_that_raises_refuses_the_push_and_the_pipeline_goes_on(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(
        Pipeline("keys", processors=Processors(lambda m: None, partition_by=key_of))
    )
    with pytest.raises(PartitionKeyError, match="partition_by raised KeyError"):
        await push(ref, {"no key": 1})
    with pytest.raises(PartitionKeyError):
        await push_many(ref, [{"key": 1}, {"nokey": 2}])
    assert statistics(ref).accepted == 0, "push_many accepts all or nothing"
    assert (await test_message(ref, {"key": "a"})).status == "ok"


async def test_an_unhashable_key_refuses_the_push_and_the_pipeline_goes_on(
    system: ActorSystem,
) -> None:
    ref = await system.spawn(
        Pipeline("hash", processors=Processors(lambda m: None, partition_by=key_of))
    )
    with pytest.raises(PartitionKeyError, match="not hashable"):
        await push(ref, {"key": ["a", "list"]})
    with pytest.raises(PartitionKeyError, match="not hashable"):
        await push(ref, "data", key={"a": 1})  # type: ignore[arg-type]
    assert (await test_message(ref, {"key": ("a", "tuple")})).status == "ok"


async def test_a_message_routed_to_an_unknown_batcher_fails_and_others_go_on(
    system: ActorSystem,
) -> None:
    def route(message: Message) -> None:
        message.batcher = message.data

    ref = await system.spawn(
        Pipeline(
            "route",
            processors=Processors(route, concurrency=1),
            batchers={"store": Batchers(lambda ms, info: None, batch_timeout=0.01)},
        )
    )
    lost = await test_message(ref, "nowhere")
    assert isinstance(lost.failure, UnknownBatcher)
    assert (await test_message(ref, "store")).status == "ok"


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: Processors("not callable"), TypeError),  # type: ignore[arg-type]
        (lambda: Processors(print, concurrency=0), ValueError),
        (lambda: Processors(print, partition_by=3), TypeError),  # type: ignore[arg-type]
        (lambda: Processors(print, strict="yes"), TypeError),  # type: ignore[arg-type]
        (lambda: Batchers(print, batch_size=0), ValueError),
        (lambda: Batchers(print, batch_timeout=-1), ValueError),
        (lambda: Batchers(print, flush_when_idle=1), TypeError),  # type: ignore[arg-type]
        (lambda: RateLimit(allowed=0), ValueError),
        (lambda: Retry(max_attempts=0), ValueError),
        (lambda: Retry(factor=0.5), ValueError),
        (lambda: Pipeline("", processors=Processors(print)), ValueError),
        (lambda: Pipeline("p", processors=print), TypeError),  # type: ignore[arg-type]
        (lambda: Pipeline("p", processors=Processors(print), max_in_flight=0), ValueError),
        (lambda: Pipeline("p", processors=Processors(print), batchers={"b": print}), TypeError),  # type: ignore[dict-item]
        (lambda: Pipeline("p", processors=Processors(print), shutdown_timeout=0), ValueError),
        (lambda: Pipeline("p", processors=Processors(print), producer=object()), TypeError),  # type: ignore[arg-type]
    ],
)
def test_invalid_options_are_refused_when_built(build: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        build()
