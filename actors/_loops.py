"""Event loops: the runtime runs on any asyncio event loop; uvloop is an opt-in.

An `ActorSystem` runs on the loop it is entered on, so choosing a loop is choosing how the
program starts its loop. `loop_factory(name)` gives the factory for a loop by name, for the
standard asyncio way of choosing one:

```python
import asyncio
from actors import ActorSystem, loop_factory

async def main() -> None:
    async with ActorSystem() as system:
        ...

with asyncio.Runner(loop_factory=loop_factory("uvloop")) as runner:   # Python 3.11
    runner.run(main())
# Python 3.12+: asyncio.run(main(), loop_factory=loop_factory("uvloop"))
```

The runtime's own entry points take the same factory: `Application.main(loop_factory=...)` and
`run_in_thread(loop_factory=...)`.

- ``"asyncio"``: the standard library's loop (`asyncio.new_event_loop`), the default.
- ``"uvloop"``: libuv's loop (`uvloop.new_event_loop`): call round trips and spawns are
  markedly faster (see docs/BENCHMARKS.md). uvloop is an optional dependency: the runtime
  imports it only here, only when asked, and without it ``loop_factory("uvloop")`` raises an
  `ImportError` that says how to install it. It runs on Unix only.

The guarantees of `actors` hold on both (the runtime's tests run on both loops).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Literal

__all__ = ["LoopName", "loop_factory"]

LoopName = Literal["asyncio", "uvloop"]

LoopFactory = Callable[[], asyncio.AbstractEventLoop]


def loop_factory(name: LoopName = "asyncio") -> LoopFactory:
    """The factory of the event loop called `name` ("asyncio" or "uvloop").

    Raises `ValueError` for another name, `ImportError` (with how to install it) if "uvloop"
    is asked for and not installed.
    """
    if name == "asyncio":
        return asyncio.new_event_loop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError as exc:
            raise ImportError(
                "the uvloop event loop was asked for but uvloop is not installed; install it "
                "with `pip install uvloop` (the version pinned in requirements.lock), or use "
                'the default loop ("asyncio")'
            ) from exc
        factory: LoopFactory = uvloop.new_event_loop
        return factory
    raise ValueError(f'the event loop must be "asyncio" or "uvloop", got {name!r}')
