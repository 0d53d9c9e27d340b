"""Pipelines fed by RabbitMQ: a producer with Broadway's acknowledgement semantics, partitioned
quorum queues and a confirming publisher (aio-pika; an optional dependency).

```python
from actors.pipeline import Pipeline, Processors
from actors.pipeline.rabbitmq import Publisher, RabbitMQProducer, declare_partitions

queues = await declare_partitions(url, "orders", 8, delivery_limit=5)
producer = RabbitMQProducer(url, queues, prefetch=200, on_failure="requeue_once")
ref = await system.spawn(Pipeline("orders", producer=producer,
                                  processors=Processors(handle, partition_by=lambda m: m.key)))
async with Publisher(url, prefix="orders", partitions=8) as publisher:
    await publisher.publish("customer-42", b"...")          # confirmed by the broker
await ref.stop()        # stops taking deliveries, acks what is in flight, then closes
```

The guide is the section "Producers on a broker" of `docs/pipeline.md`. Module docstrings are
the reference: `_consumer` (acknowledgement, failures, reconnects, draining and the RabbitMQ 3.10
ack-before-close bug), `_publisher` (partitioned queues, confirms), `_partitions` (hashing).
"""

from actors.pipeline.rabbitmq._amqp import redact
from actors.pipeline.rabbitmq._consumer import OnFailure, RabbitMQProducer, RabbitMQStatistics
from actors.pipeline.rabbitmq._partitions import (
    PARTITION_KEY_HEADER,
    partition_for,
    partition_queues,
)
from actors.pipeline.rabbitmq._publisher import Publisher, PublishFailed, declare_partitions

__all__ = [
    "PARTITION_KEY_HEADER",
    "OnFailure",
    "PublishFailed",
    "Publisher",
    "RabbitMQProducer",
    "RabbitMQStatistics",
    "declare_partitions",
    "partition_for",
    "partition_queues",
    "redact",
]
