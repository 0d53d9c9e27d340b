"""Test helpers: push a message or a batch and await how it ended (Broadway's `test_message`
and `test_batch`).

```python
message = await test_message(ref, {"id": 1})
assert message.status == "ok"
outcome = await test_batch(ref, [1, 2, 3])
assert [m.data for m in outcome.successful] == [1, 2, 3]
```

The messages carry their own acknowledger, so they can run beside normal traffic. A
`test_message` is flushed through batchers at once (Broadway's ``batch_mode: :flush``); a
`test_batch` respects `batch_size` and `batch_timeout` unless ``flush=True``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import Any

from actors import ActorRef
from actors.pipeline._message import Message
from actors.pipeline._pipeline import _topology, accept_many

__all__ = ["CallerAcknowledger", "Outcome", "test_batch", "test_message"]


@dataclass
class Outcome:
    """How a group of test messages ended."""

    successful: list[Message] = field(default_factory=list)
    failed: list[Message] = field(default_factory=list)


class CallerAcknowledger:
    """Collects the outcome of `expected` messages; `outcome` resolves when all have ended."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.result = Outcome()
        self.outcome: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()

    def ack(self, successful: list[Message], failed: list[Message]) -> None:
        self.result.successful.extend(successful)
        self.result.failed.extend(failed)
        ended = len(self.result.successful) + len(self.result.failed)
        if ended >= self.expected and not self.outcome.done():
            self.outcome.set_result(self.result)


async def test_message(
    pipeline: ActorRef,
    data: Any,
    *,
    key: Hashable = None,  # noqa: PT028 (not a test)
    metadata: dict[str, Any] | None = None,  # noqa: PT028 (not a test)
    timeout: float | None = 5.0,  # noqa: PT028 (not a test)
) -> Message:
    """Push one message and return it once it has been acked or failed (see `status`)."""
    acknowledger = CallerAcknowledger(1)
    message = Message(data, key=key, metadata=metadata, acknowledger=acknowledger)
    message.flush = True
    await accept_many(_topology(pipeline), [message])
    async with asyncio.timeout(timeout):
        await acknowledger.outcome
    return message


async def test_batch(
    pipeline: ActorRef,
    items: Iterable[Any],
    *,
    flush: bool = False,  # noqa: PT028 (not a test)
    timeout: float | None = 5.0,  # noqa: PT028 (not a test)
) -> Outcome:
    """Push items (data or `Message` objects) in order; return once every one has ended."""
    messages = [item if isinstance(item, Message) else Message(item) for item in items]
    acknowledger = CallerAcknowledger(len(messages))
    for message in messages:
        message.acknowledger = acknowledger
        message.flush = flush
    if not messages:
        return acknowledger.result
    await accept_many(_topology(pipeline), messages)
    async with asyncio.timeout(timeout):
        return await acknowledger.outcome


test_message.__test__ = False  # type: ignore[attr-defined]
test_batch.__test__ = False  # type: ignore[attr-defined]
