"""The messages `WebSurface` answers, frozen, and the functions that send the public ones.

The aiohttp handlers (`WebServer`, `Api`) run beside the surface actor and reach its state only
through these messages: a client connects (`Attach`) and goes (`Detach`), sends a frame
(`ClientFrame`) and is answered (`Reply`); the API reads a thread's view (`GetViews`) or
conversation (`GetKey`) and names a thread (`NameThread`). The owner's operations are
functions: `stream_address`, `stream_stats`, `stream_activity`, `rotate_token`, `accept_streams`,
`drop_clients`. Each waits `TIMEOUT`: the surface answers from memory, at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from actors import ActorRef
from schemas import stream as st

if TYPE_CHECKING:
    from piano.threads import ThreadKey
    from piano.web._client import StreamClient

__all__ = [
    "TIMEOUT",
    "AcceptStreams",
    "Attach",
    "ClientFrame",
    "Detach",
    "DropClients",
    "GetActivity",
    "GetAddress",
    "GetKey",
    "GetStats",
    "GetViews",
    "NameThread",
    "Reply",
    "RotateToken",
    "accept_streams",
    "drop_clients",
    "rotate_token",
    "stream_activity",
    "stream_address",
    "stream_stats",
]

TIMEOUT: Final = 5.0
"""Seconds a call to the web surface waits: it answers from memory, without waiting on
anything."""


@dataclass(frozen=True, slots=True)
class Attach:
    """A stream client connected and authenticated: start its writer and welcome it."""

    client: StreamClient


@dataclass(frozen=True, slots=True)
class Detach:
    """A stream client went away (cast)."""

    client: StreamClient


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """A subscribe, unsubscribe, resume or dashboard frame of `client`, to apply."""

    client: StreamClient
    frame: st.ClientFrame


@dataclass(frozen=True, slots=True)
class Reply:
    """Send `payload` to `client` (cast; dropped if the client has gone)."""

    client: StreamClient
    payload: st.Payload


@dataclass(frozen=True, slots=True)
class GetViews:
    """The snapshot of one thread's view: a list of `ThreadState`."""

    thread_id: str


@dataclass(frozen=True, slots=True)
class GetKey:
    """The conversation (`ThreadKey`) the surface knows a thread by, or None."""

    thread_id: str


@dataclass(frozen=True, slots=True)
class NameThread:
    """Record which conversation a thread is (cast), for snapshots and `GetKey`."""

    thread_id: str
    key: ThreadKey


@dataclass(frozen=True, slots=True)
class GetStats:
    """The stream's `StreamStats`."""


@dataclass(frozen=True, slots=True)
class GetActivity:
    """The conversations' `Activity` as the next dashboard frame will carry it (read without
    resetting the per-conversation counts the frames consume)."""


@dataclass(frozen=True, slots=True)
class GetAddress:
    """The (host, port) the server listens on."""


@dataclass(frozen=True, slots=True)
class RotateToken:
    """Rotate the access token (to `token`, else a new random one); the old one stays valid
    for `grace` seconds (None: the configured `rotation_grace`). Answers the new token."""

    grace: float | None = None
    token: str | None = None


@dataclass(frozen=True, slots=True)
class AcceptStreams:
    """Accept new stream connections (or refuse them with 503, for maintenance)."""

    accepting: bool


@dataclass(frozen=True, slots=True)
class DropClients:
    """Close every stream client with code 1012 and `reason`; answers how many."""

    reason: str


async def stream_address(surface: ActorRef) -> tuple[str, int]:
    """The (host, port) the web surface listens on."""
    address: tuple[str, int] = await surface.call(GetAddress(), timeout=TIMEOUT)
    return address


async def stream_stats(surface: ActorRef) -> st.StreamStats:
    """The event stream's statistics."""
    stats: st.StreamStats = await surface.call(GetStats(), timeout=TIMEOUT)
    return stats


async def stream_activity(surface: ActorRef) -> st.Activity:
    """What the conversations are doing (`GetActivity`), for a dashboard snapshot over HTTP."""
    activity: st.Activity = await surface.call(GetActivity(), timeout=TIMEOUT)
    return activity


async def rotate_token(
    surface: ActorRef, grace: float | None = None, token: str | None = None
) -> str:
    """Rotate the access token; the new one (see `RotateToken`)."""
    new: str = await surface.call(RotateToken(grace, token), timeout=TIMEOUT)
    return new


async def accept_streams(surface: ActorRef, accepting: bool) -> None:
    """Accept, or refuse with 503, new stream connections."""
    await surface.call(AcceptStreams(accepting), timeout=TIMEOUT)


async def drop_clients(surface: ActorRef, reason: str) -> int:
    """Close every stream client (code 1012: they reconnect and resume); how many."""
    dropped: int = await surface.call(DropClients(reason), timeout=TIMEOUT)
    return dropped
