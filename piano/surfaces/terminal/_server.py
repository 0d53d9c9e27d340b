"""The terminal chat surface: the daemon's end of `piano chat`.

An owner-only Unix socket (mode 0600, peer uid checked). Each connection chooses a conversation
and agent (`Hello`), which maps to a thread like any surface's conversation does, or an existing
thread by its id, whichever surface opened it (`--thread`); the thread's
events are forwarded to every connection showing it, in order. A client that cannot keep up
(more than `max_buffer` bytes unsent) is dropped with a reason rather than slowing the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import structlog

from actors import ActorRef, Registry
from actors.console import bind_owner_socket, peer_uid
from piano.commands import Commands
from piano.models import settings_line
from piano.surfaces._surface import Surface, subscribe, unsubscribe
from piano.threads import (
    THREADS,
    NotSaved,
    StoreDirectory,
    ThreadDirectory,
    ThreadKey,
    conversation_status,
    decide,
    interrupt,
    open_conversation,
    resume_lines,
    send_message,
    web_link,
    which_conversations,
)
from schemas import chat
from schemas import events as ev
from schemas.alerts import Alert

__all__ = ["SURFACE", "TERMINAL", "ChatServer"]

SURFACE = "terminal"
"""This surface's name in its conversations' keys (`ThreadKey.surface`) and in the store."""
TERMINAL = f"surface:{SURFACE}"
"""The name `ChatServer` registers under."""

log = structlog.get_logger(__name__)
_encoder = msgspec.json.Encoder()
_decoder: msgspec.json.Decoder[chat.ClientFrame] = msgspec.json.Decoder(chat.ClientFrame)


@dataclass(frozen=True, slots=True)
class _Attach:
    """A connection shows `thread_id`: forward its events to `writer`."""

    thread_id: str
    writer: asyncio.StreamWriter


@dataclass(frozen=True, slots=True)
class _Detach:
    """The connection of `writer` is gone."""

    thread_id: str
    writer: asyncio.StreamWriter


ERROR_LINGER = 5.0
"""Seconds a connection that failed waits for its client to read the error and hang up."""


class ChatServer(Surface):
    """Serve `piano chat` clients; see the module documentation."""

    def __init__(
        self,
        path: str,
        subscriptions: Registry,
        directory: ThreadDirectory,
        default_agent: str,
        max_buffer: int = 4 * 1024 * 1024,
        web: tuple[str, int] | None = None,
        commands: Commands | None = None,
    ) -> None:
        self.path = path
        self.commands = commands
        self.web = web
        self.subscriptions = subscriptions
        self.directory = directory
        self.default_agent = default_agent
        self.max_buffer = max_buffer
        self.clients: dict[str, set[asyncio.StreamWriter]] = {}
        self.server: asyncio.Server | None = None

    def describe(self) -> str:
        return f"chat socket {self.path}, {sum(map(len, self.clients.values()))} clients"

    async def init(self) -> None:
        self.trap_exits = True
        self.server = await asyncio.start_unix_server(
            self._serve, sock=bind_owner_socket(self.path)
        )

    async def terminate(self, reason: object) -> None:
        if self.server is not None:
            self.server.close()
            for writers in self.clients.values():
                for writer in writers:
                    writer.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def on_event(self, message: ev.ThreadEvent) -> None:
        self._forward(message)

    def handle_call(self, message: Any, caller: Any) -> Any:
        match message:
            case _Attach(thread_id=thread_id, writer=writer):
                self.clients.setdefault(thread_id, set()).add(writer)
                subscribe(self.subscriptions, thread_id, self.ref)
                return None
            case _Detach(thread_id=thread_id, writer=writer):
                writers = self.clients.get(thread_id, set())
                writers.discard(writer)
                if not writers:
                    self.clients.pop(thread_id, None)
                    unsubscribe(self.subscriptions, thread_id, self.ref)
                return None
        return super().handle_call(message, caller)

    def alert(self, alert: Alert) -> None:
        """Every connected ``piano chat`` is the owner's (the socket is owner-only)."""
        frame = _encoder.encode(chat.AlertFrame(alert)) + b"\n"
        for writer in {w for writers in self.clients.values() for w in writers}:
            writer.write(frame)

    def _forward(self, event: ev.ThreadEvent) -> None:
        frame = _encoder.encode(chat.EventFrame(event)) + b"\n"
        for writer in list(self.clients.get(event.thread_id, ())):
            if writer.transport.get_write_buffer_size() > self.max_buffer:
                log.warning("chat.client_too_slow", thread=event.thread_id)
                writer.write(_encoder.encode(chat.ChatError("dropped: too slow to read")) + b"\n")
                writer.close()
                self.clients[event.thread_id].discard(writer)
                continue
            writer.write(frame)

    async def _welcome(
        self,
        key: ThreadKey,
        writer: asyncio.StreamWriter,
        send: Callable[[chat.ServerFrame], None],
    ) -> str:
        """Attach the connection to the thread of `key` and tell the client which it is and
        how to continue it elsewhere."""
        thread_id, codex_thread_id = await self.directory.thread_for(key)
        await self.ref.call(_Attach(thread_id, writer))
        web = web_link(thread_id, *self.web) if self.web is not None else None
        lines = resume_lines(thread_id, codex_thread_id=codex_thread_id, web=web)
        send(chat.Welcome(thread_id=thread_id, agent=key.agent, resume=lines))
        return thread_id

    async def _status(self, threads: ActorRef, key: ThreadKey) -> str:
        """The conversation's state as ``/status`` shows it: thread, agent, model and effort,
        whether a turn runs, and how to continue it elsewhere."""
        status = await conversation_status(await open_conversation(threads, key))
        web = web_link(status.thread_id, *self.web) if self.web is not None else None
        lines = [
            f"thread: {status.thread_id}",
            f"agent: {status.agent} ({status.backend})",
            settings_line(status),
            "a turn is running" if status.running else "idle",
        ]
        if status.queued:
            lines.append(f"{status.queued} queued")
        if status.approvals:
            lines.append(f"{len(status.approvals)} approvals pending (/approvals)")
        lines.append("continue elsewhere:")
        lines += resume_lines(status.thread_id, codex_thread_id=status.codex_thread_id, web=web)
        return "\n".join(lines)

    async def _key_of(self, threads: ActorRef, thread_id: str) -> ThreadKey | None:
        """The conversation of an existing thread, whichever surface opened it: a live one,
        else the store's record; None if no thread has that id."""
        for key in await which_conversations(threads):
            if (await self.directory.thread_for(key))[0] == thread_id:
                return key
        if isinstance(self.directory, StoreDirectory):
            record = await asyncio.to_thread(self.directory.reader.thread, thread_id)
            if record is not None:
                key = ThreadKey(record.surface, record.conversation, record.agent)
                # a conversation started anew (/new) has a newer thread: the old one is closed
                if (await self.directory.thread_for(key))[0] == thread_id:
                    return key
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        def send(frame: chat.ServerFrame) -> None:
            writer.write(_encoder.encode(frame) + b"\n")

        thread_id: str | None = None
        try:
            if peer_uid(writer) != os.geteuid():
                send(chat.ChatError("refused: not the owner of this daemon"))
                return
            key: ThreadKey | None = None
            user: str | None = None
            async for line in reader:
                try:
                    frame = _decoder.decode(line)
                except msgspec.DecodeError as exc:
                    send(chat.ChatError(f"bad frame: {exc}"))
                    continue
                threads = self.system.whereis(THREADS)
                if threads is None:
                    send(chat.ChatError("the daemon is restarting its threads; try again"))
                    continue
                match frame:
                    case chat.Hello(thread=str(wanted), user=user):
                        found = await self._key_of(threads, wanted)
                        if found is None:
                            send(chat.ChatError(f"no thread {wanted!r}"))
                            continue
                        key = found
                        thread_id = await self._welcome(key, writer, send)
                    case chat.Hello(conversation=conversation, agent=chosen, user=user):
                        key = ThreadKey(SURFACE, conversation, chosen or self.default_agent)
                        thread_id = await self._welcome(key, writer, send)
                    case _ if key is None:
                        send(chat.ChatError("say hello first"))
                    case chat.Say(text=text):
                        interaction = ev.Interaction(id=uuid.uuid4().hex, text=text, user=user)
                        try:
                            outcome = await send_message(threads, key, interaction)
                        except NotSaved as exc:
                            # Refused, not failed: the conversation logged it once; the user
                            # reads why and the connection stays for the next message.
                            send(chat.ChatError(f"error: {exc}"))
                            continue
                        send(chat.Accepted(interaction_id=interaction.id, outcome=outcome))
                    case chat.Decide(approval_id=approval_id, decision=decision):
                        thread = await open_conversation(threads, key)
                        if not await decide(thread, approval_id, decision, user):
                            send(chat.ChatError(f"no pending approval {approval_id}"))
                    case chat.Command(text=text):
                        # The socket is owner-only (checked above): its user is the owner.
                        reply = None
                        if self.commands is not None:
                            reply = await self.commands.run(
                                text,
                                system=self.system,
                                key=key,
                                thread_id=thread_id,
                                user=user,
                                owner=True,
                            )
                        if reply is None:
                            send(chat.ChatError(f"unknown command {text.split(maxsplit=1)[0]}"))
                        else:
                            send(chat.CommandReply(reply))
                    case chat.Status():
                        send(chat.CommandReply(await self._status(threads, key)))
                    case chat.Interrupt():
                        thread = await open_conversation(threads, key)
                        if not await interrupt(thread):
                            send(chat.ChatError("nothing to interrupt"))
        except Exception as exc:
            log.warning("chat.connection_failed", error=repr(exc))
            with contextlib.suppress(Exception):
                send(chat.ChatError(f"error: {exc}"))
                # Half-close and let the client read the error before the socket goes: closing
                # at once broke the client's next write (its message, sent right after its
                # hello) with EPIPE, and it showed "connection broke" instead of the reason.
                writer.write_eof()
                await asyncio.wait_for(reader.read(), ERROR_LINGER)
        finally:
            if thread_id is not None and self.ref.alive:
                with contextlib.suppress(Exception):
                    await self.ref.call(_Detach(thread_id, writer))
            writer.close()
