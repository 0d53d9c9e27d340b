"""A live console for an actor system: a Python REPL inside the running process (``iex --remsh``).

```python
async with ActorSystem() as system, ConsoleServer(system, "piano.sock"):
    ...
```

then, from a shell of the same user: ``piano console --socket piano.sock``. Statements run on the
system's event loop with top-level ``await``; helpers (``ps()``, ``tree()``, ``call(x, msg)``,
``state(x)``, ``kill(x)``... ``help()`` lists them) inspect and drive the actors. See
`actors.console._server` for the guarantees (owner-only socket, tracebacks that leave the system
running, interrupts, disconnects that leave nothing behind) and `schemas.console` for the wire
protocol. `run_client` is the terminal client; `run_demo` a small system to try it on.
"""

from __future__ import annotations

from actors.console._client import run_client, run_statements
from actors.console._demo import run_demo
from actors.console._helpers import Helpers
from actors.console._server import ConsoleServer
from actors.console._socket import bind_owner_socket, peer_uid

__all__ = [
    "ConsoleServer",
    "Helpers",
    "bind_owner_socket",
    "peer_uid",
    "run_client",
    "run_demo",
    "run_statements",
]
