"""Piano's actor runtime: Erlang/OTP processes for asyncio.

Actors are objects with a mailbox that handle one message at a time. They talk only through
references (`ActorRef`): `call` (request/reply), `cast` (fire-and-forget) and `send` (plain
messages). They are linked and monitored as in OTP, so that failures propagate to whoever must
know, and supervisors (the `supervisors` package) restart them.

Start with `docs/actors.md`; each module's docstring is the reference for its part:
`actors._actor` (the gen_server lifecycle), `actors._ref` (calls and replies), `actors._reasons`
(exit reasons), `actors._system` (spawning, names, shutdown), `actors._registry`,
`actors._timers`, `actors._introspection`, `actors._redaction` (secrets kept out of what is
rendered), `actors._loops` (choosing the event loop: uvloop), `actors._thread` (thread actors
for blocking libraries), `actors._pykka` (adopting pykka actors), `actors._blocking`
(synchronous code), `actors._backoff` (`Backoff`: the one back-off, for restarts, retries and
reconnects).
"""

from actors._actor import Actor, current_actor
from actors._backoff import Backoff, Streak
from actors._blocking import BlockingRef, BlockingSystem, run_in_thread
from actors._introspection import (
    DESCRIPTION_LIMIT,
    ActorInfo,
    describe,
    get_state,
    info,
    replace_state,
    resume,
    statistics,
    suspend,
    trace,
)
from actors._logging import get_logger
from actors._loops import LoopName, loop_factory
from actors._pykka import PykkaActorProxy
from actors._reasons import (
    KILL,
    KILLED,
    NOPROC,
    NORMAL,
    SHUTDOWN,
    ActorError,
    ActorExited,
    ActorTimeout,
    Down,
    Exit,
    Ignore,
    MailboxFull,
    NameTaken,
    Shutdown,
    StartFailed,
    UnknownMessage,
    is_normal_exit,
)
from actors._redaction import Secret, redact, register_secret
from actors._ref import NOREPLY, ActorRef, Caller, MonitorRef
from actors._registry import Registry
from actors._system import LINGER, ActorSystem, SystemStatistics
from actors._thread import PykkaActorStopped, ThreadActor
from actors._timers import Timer

__all__ = [
    "DESCRIPTION_LIMIT",
    "KILL",
    "KILLED",
    "LINGER",
    "NOPROC",
    "NOREPLY",
    "NORMAL",
    "SHUTDOWN",
    "Actor",
    "ActorError",
    "ActorExited",
    "ActorInfo",
    "ActorRef",
    "ActorSystem",
    "ActorTimeout",
    "Backoff",
    "BlockingRef",
    "BlockingSystem",
    "Caller",
    "Down",
    "Exit",
    "Ignore",
    "LoopName",
    "MailboxFull",
    "MonitorRef",
    "NameTaken",
    "PykkaActorProxy",
    "PykkaActorStopped",
    "Registry",
    "Secret",
    "Shutdown",
    "StartFailed",
    "Streak",
    "SystemStatistics",
    "ThreadActor",
    "Timer",
    "UnknownMessage",
    "current_actor",
    "describe",
    "get_logger",
    "get_state",
    "info",
    "is_normal_exit",
    "loop_factory",
    "redact",
    "register_secret",
    "replace_state",
    "resume",
    "run_in_thread",
    "statistics",
    "suspend",
    "trace",
]
