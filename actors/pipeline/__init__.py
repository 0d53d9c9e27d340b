"""A partitioned, ordered message pipeline with Broadway's semantics, built on the actor runtime.

```python
from actors.pipeline import Pipeline, Processors, Batchers, push

def handle(message):                      # or `async def`; may raise or call message.fail()
    store.append(message.data)

pipeline = Pipeline(
    "events",
    processors=Processors(handle, concurrency=4, partition_by=lambda m: m.data["thread"]),
)
ref = await system.spawn(pipeline)
await push(ref, {"thread": "t1", "text": "hello"})
await ref.stop()                          # drains first
```

The guide is `docs/pipeline.md` (topology, the exact ordering guarantee, failures, strict mode,
back-pressure, draining). Each module's docstring is the reference for its part:
`_pipeline` (the supervisor and pushing), `_producer`, `_processors`, `_batchers`, `_message`
(messages and acknowledgement), `_rate_limiter`, `_terminator` (draining), `_slots` (why
restarts lose nothing), `_statistics` (statistics and telemetry), `_testing`.
`actors.pipeline.rabbitmq` feeds a pipeline from RabbitMQ and publishes to partitioned queues
(aio-pika, an optional dependency).
"""

from actors.pipeline._message import (
    Acknowledger,
    Interrupted,
    Message,
    PartitionKeyError,
    PipelineFull,
    PipelineStopped,
    RetriesExhausted,
    UnknownBatcher,
)
from actors.pipeline._options import Batchers, BatchInfo, Processors, RateLimit, Retry
from actors.pipeline._pipeline import (
    Pipeline,
    push,
    push_many,
    push_nowait,
    statistics,
    update_rate_limit,
)
from actors.pipeline._producer import Emit, InMemoryProducer, Producer
from actors.pipeline._statistics import PipelineStatistics, StageStatistics, Telemetry
from actors.pipeline._testing import CallerAcknowledger, Outcome, test_batch, test_message

__all__ = [
    "Acknowledger",
    "BatchInfo",
    "Batchers",
    "CallerAcknowledger",
    "Emit",
    "InMemoryProducer",
    "Interrupted",
    "Message",
    "Outcome",
    "PartitionKeyError",
    "Pipeline",
    "PipelineFull",
    "PipelineStatistics",
    "PipelineStopped",
    "Processors",
    "Producer",
    "RateLimit",
    "RetriesExhausted",
    "Retry",
    "StageStatistics",
    "Telemetry",
    "UnknownBatcher",
    "push",
    "push_many",
    "push_nowait",
    "statistics",
    "test_batch",
    "test_message",
    "update_rate_limit",
]
