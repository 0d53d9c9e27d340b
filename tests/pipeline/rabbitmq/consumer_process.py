"""A consumer process for the cross-process tests: a pipeline over partitioned quorum queues.

``python -m tests.pipeline.rabbitmq.consumer_process URL LOG PRIMARY [STANDBY] [--delay S]``
(queues comma-separated). It consumes PRIMARY, prints ``ready``; on the stdin line ``standby``
it also subscribes STANDBY (single-active-consumer: it gets those queues only when their
active consumer goes) and prints ``standby``; on ``stop`` it drains, prints ``stopped`` and
exits. Every handled message (body ``key:seq``) is appended to LOG as ``key seq`` with one
unbuffered write before its handler returns, so a line exists for everything that was acked,
even when the process is SIGKILLed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

import structlog

from actors import ActorSystem
from actors.pipeline import Message, Pipeline, Processors
from actors.pipeline.rabbitmq import RabbitMQProducer


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("log")
    parser.add_argument("primary")
    parser.add_argument("standby", nargs="?", default="")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--prefetch", type=int, default=50)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    fd = os.open(args.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def handle(message: Message) -> None:
        if args.delay:
            await asyncio.sleep(args.delay)  # a handler doing slow work
        key, seq = message.data.decode().split(":")
        os.write(fd, f"{key} {seq}\n".encode())

    producer = RabbitMQProducer(args.url, args.primary.split(","), prefetch=args.prefetch)
    async with ActorSystem() as system:
        ref = await system.spawn(
            Pipeline(
                "consumer",
                producer=producer,
                processors=Processors(handle, concurrency=4, partition_by=lambda m: m.key),
            )
        )
        await producer.wait_consuming()
        print("ready", flush=True)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if line == "standby":
                for queue in filter(None, args.standby.split(",")):
                    await producer.add_queue(queue)
                print("standby", flush=True)
            elif line in ("stop", ""):
                await ref.stop()
                print("stopped", flush=True)
                return


if __name__ == "__main__":
    asyncio.run(main())
