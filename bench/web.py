"""The web stream's fan-out: events per second to 1, 100 and 1,000 WebSocket clients, and the
latency the web surface adds between an event entering it and a client holding it.

The server (a `WebSurface` in an ActorSystem, on 127.0.0.1) runs in this process; the clients
run in a second process (``python -m bench.web clients ...``, one aiohttp session, N sockets)
so they do not share the server's event loop. Events go in the way the daemon's pipeline hands
them over (`piano.surfaces.deliver` to the surface subscribed to every thread), each an
`ItemDelta` of about 200 bytes on the wire.

- ``fanout_throughput``: M events published as fast as the server takes them (yielding to the
  loop every 50); the result is M / (last event received by the last client - first event
  published), and the same times N as deliveries per second. Client queues are large enough
  that nobody is dropped; every client checks that it saw seq 1..M exactly in order.
- ``fanout_latency``: events published at a steady rate well below the throughput; each
  client computes, for every event, its receive time minus the event's ``at`` (set, with
  ``time.time()``, right before `deliver`); median and p99 over every (client, event) pair.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from collections.abc import Iterator
from typing import Any

import msgspec

from bench.harness import Options

__all__ = ["run"]

TOKEN = "bench-token-0123456789"
SIZES = {1: 20_000, 100: 2_000, 1000: 300}
QUICK_SIZES = {1: 500, 100: 50, 1000: 20}
LATENCY = {1: (2_000, 1000.0), 100: (500, 200.0), 1000: (100, 20.0)}
"""clients -> (events, events per second published) for the latency workload."""
QUICK_LATENCY = {1: (50, 500.0), 100: (20, 100.0), 1000: (10, 10.0)}


class _Data(msgspec.Struct):
    at: float = 0.0


class _Type(msgspec.Struct):
    type: str


class _Light(msgspec.Struct):
    seq: int
    data: _Data


async def _clients(count: int, port: int, events: int) -> dict[str, Any]:
    """The client side: connect, subscribe, say ready, then read `events` events each."""
    from aiohttp import ClientSession, TCPConnector

    decode = msgspec.json.Decoder(_Light).decode
    url = f"http://127.0.0.1:{port}/stream"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with ClientSession(connector=TCPConnector(limit=0)) as session:
        sockets = []
        for start in range(0, count, 100):
            batch = [
                session.ws_connect(url, headers=headers, max_msg_size=0)
                for _ in range(min(100, count - start))
            ]
            sockets.extend(await asyncio.gather(*batch))
        for ws in sockets:
            await ws.send_str('{"type": "subscribe", "thread_id": "*", "snapshot": false}')
        kind = msgspec.json.Decoder(_Type).decode
        for ws in sockets:
            while kind((await ws.receive()).data).type != "ack":
                pass
        print("ready", flush=True)

        async def read(ws: Any) -> tuple[bool, float, list[float]]:
            expected, latencies, last = 1, [], 0.0
            ordered = True
            while expected <= events:
                msg = await ws.receive()
                envelope = decode(msg.data)
                if envelope.seq == 0:
                    continue
                last = time.time()
                ordered &= envelope.seq == expected
                latencies.append(last - envelope.data.at)
                expected += 1
            return ordered, last, latencies

        results = await asyncio.gather(*(read(ws) for ws in sockets))
    latencies = [value for _, _, values in results for value in values]
    return {
        "ordered": all(ok for ok, _, _ in results),
        "last": max(last for _, last, _ in results),
        "median_ms": statistics.median(latencies) * 1000,
        "p99_ms": statistics.quantiles(latencies, n=100)[98] * 1000 if len(latencies) > 1 else 0,
        "received": len(latencies),
    }


async def _measure(clients: int, events: int, rate: float | None) -> dict[str, Any]:
    """One run: a fresh server, `clients` clients in a subprocess, `events` events."""
    from actors import ActorSystem, Registry
    from piano.surfaces import deliver
    from piano.threads import MemoryDirectory
    from piano.web import WebConfig, child_spec, stream_address, stream_stats
    from schemas import events as ev

    config = WebConfig(
        port=0, client_queue=events + 100, replay_buffer=max(events, 1), heartbeat=60.0
    )
    async with ActorSystem() as system:
        subscriptions = Registry(keys="duplicate")
        spec = child_spec(
            config, subscriptions=subscriptions, directory=MemoryDirectory(), token=TOKEN
        )
        surface = await system.spawn(spec.start())
        _, port = await stream_address(surface)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.web",
            "clients",
            str(clients),
            str(port),
            str(events),
            stdout=asyncio.subprocess.PIPE,
        )
        assert process.stdout is not None
        ready = await process.stdout.readline()
        if ready.strip() != b"ready":
            raise RuntimeError(f"the client process failed to start: {ready!r}")
        delta = "x" * 40
        first = time.time()
        for n in range(events):
            deliver(
                subscriptions,
                ev.ItemDelta(
                    thread_id="t1",
                    turn_id="u1",
                    interaction_id="i1",
                    item_id="m1",
                    stream="text",
                    delta=delta,
                    at=time.time(),
                ),
            )
            if rate is not None:
                await asyncio.sleep(max(0.0, first + (n + 1) / rate - time.time()))
            elif n % 50 == 49:
                await asyncio.sleep(0)
        line = await process.stdout.readline()
        await process.wait()
        stats = await stream_stats(surface)
    result: dict[str, Any] = json.loads(line)
    seconds = result["last"] - first
    result.update(seconds=seconds, dropped=stats.dropped, events=events, clients=clients)
    return result


def run(options: Options) -> Iterator[dict[str, Any]]:
    sizes = QUICK_SIZES if options.quick else SIZES
    latency = QUICK_LATENCY if options.quick else LATENCY
    rounds = 1 if options.quick else min(options.rounds, 3)
    for clients, events in sizes.items():
        workload = f"fanout_throughput_{clients}"
        if not options.wants(workload) and not options.wants("fanout_throughput"):
            continue
        runs = [asyncio.run(_measure(clients, events, None)) for _ in range(rounds)]
        rates = [r["events"] / r["seconds"] for r in runs]
        yield {
            "bench": "web",
            "workload": workload,
            "unit": "events/s per client",
            "clients": clients,
            "events": events,
            "events_per_s": round(statistics.median(rates), 1),
            "deliveries_per_s": round(statistics.median(rates) * clients, 1),
            "spread": [round(min(rates), 1), round(max(rates), 1)],
            "ordered": all(r["ordered"] and r["received"] == clients * events for r in runs),
            "dropped": sum(r["dropped"] for r in runs),
        }
    for clients, (events, rate) in latency.items():
        workload = f"fanout_latency_{clients}"
        if not options.wants(workload) and not options.wants("fanout_latency"):
            continue
        result = asyncio.run(_measure(clients, events, rate))
        yield {
            "bench": "web",
            "workload": workload,
            "unit": "ms from deliver() to a client",
            "clients": clients,
            "events": events,
            "rate_per_s": rate,
            "median_ms": round(result["median_ms"], 3),
            "p99_ms": round(result["p99_ms"], 3),
            "ordered": result["ordered"] and result["received"] == clients * events,
            "dropped": result["dropped"],
        }


if __name__ == "__main__" and sys.argv[1:2] == ["clients"]:
    count, port, events = (int(arg) for arg in sys.argv[2:5])
    print(json.dumps(asyncio.run(_clients(count, port, events))), flush=True)
