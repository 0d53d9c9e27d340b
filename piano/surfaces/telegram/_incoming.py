"""What the Telegram surface does with one stored update: a message, a command or a button.

`process_update` runs inside the surface actor, one update at a time in `update_id` order. It
returns False only when the update cannot be handled yet (the thread router is restarting); the
update then stays pending and is tried again. Everything else — including refusals and
failures, which are answered and logged — counts as processed.

Voice notes, audio, photos and documents (`_media`) are fetched and received while the update
is processed — after it is stored, before it is marked — so a crash mid-download processes it
again, once: a voice note becomes its transcript, an image an attachment, a file a mention.

Groups: the bot answers a message that mentions it, replies to one of its messages, or is a
command; other messages of the chat are kept (the last `group_context`) and handed to the agent
as context with the next message addressed to it. Forum topics are separate conversations.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from telegram import Message, MessageEntity, Update
from telegram.constants import ChatAction, ChatType

from actors import ActorRef
from piano.commands import NAMES
from piano.surfaces.telegram._media import attached, take, unsupported
from piano.surfaces.telegram._texts import decode_decision, help_text, status_text
from piano.threads import (
    THREADS,
    conversation_status,
    decide,
    interrupt,
    new_conversation,
    open_conversation,
    post_message,
)
from schemas import events as ev

if TYPE_CHECKING:
    from piano.surfaces.telegram._inbox import Conversation
    from piano.surfaces.telegram._surface import Route, TelegramSurface

__all__ = ["process_update"]

log = structlog.get_logger(__name__)


def _e(text: str) -> str:
    return html.escape(text, quote=False)


async def process_update(surface: TelegramSurface, data: dict[str, Any]) -> bool:
    """Handle one update; False to keep it pending (see the module documentation)."""
    update = Update.de_json(data, surface.bot)
    if update.callback_query is not None:
        return await _button(surface, update)
    if update.message is not None:
        return await _message(surface, update.message, update.update_id)
    return True


def _command(message: Message, username: str) -> tuple[str, str] | None:
    """("name", "arguments") of a command to this bot, None for anything else."""
    text = message.text or ""
    if not text.startswith("/"):
        return None
    head, _, rest = text.partition(" ")
    name, _, target = head[1:].partition("@")
    if target and target.lower() != username.lower():
        return None
    return name.lower(), rest.strip()


def _addressed(message: Message, username: str, bot_id: int) -> bool:
    mention = f"@{username}".lower()
    for entity, value in message.parse_entities([MessageEntity.MENTION]).items():
        if entity.type == MessageEntity.MENTION and value.lower() == mention:
            return True
    if mention in (message.text or message.caption or "").lower():
        return True
    replied = message.reply_to_message
    return (
        replied is not None
        and replied.forum_topic_created is None
        and replied.from_user is not None
        and replied.from_user.id == bot_id
    )


def _author(message: Message) -> str:
    user = message.from_user
    if user is None:
        return message.chat.title or "someone"
    return user.full_name or user.username or str(user.id)


async def _message(surface: TelegramSurface, message: Message, update_id: int) -> bool:
    assert surface.me is not None
    assert surface.access is not None
    text = message.text or message.caption or ""
    limit = surface.media.config.max_image_bytes if surface.media is not None else 0
    carried = attached(message, limit)
    odd = unsupported(message) if not text.strip() and carried is None else None
    if not text.strip() and carried is None and odd is None:
        return True
    chat = message.chat
    user_id = message.from_user.id if message.from_user is not None else None
    topic = message.message_thread_id if message.is_topic_message else None
    group = chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)
    username = surface.me.username or ""
    command = _command(message, username)
    conversation = surface.conversation(chat.id, topic)
    route = surface.route(conversation)
    if group and command is None and not _addressed(message, username, surface.me.id):
        seen = surface.context.setdefault(conversation.conversation, [])
        label = carried.label if carried is not None else odd
        sent = f"[sent a {label}] {text}" if label is not None else text
        seen.append(f"{_author(message)}: {sent.strip()}")
        del seen[: -surface.config.group_context or len(seen)]
        return True
    access = surface.access
    if not access.allows(user_id, chat.id):
        access.audit("message", "refused", user_id=user_id, chat_id=chat.id, detail=text[:200])
        if access.should_explain_refusal(chat.id):
            surface.say(
                route,
                "🙏 Sorry, this is a private bot and you are not on its list of users. "
                f"Ask its owner to add your id <code>{user_id}</code>.",
                reply_to=message.message_id,
            )
        return True
    threads = surface.system.whereis(THREADS)
    if command is not None:
        if command[0] in ("start", "help"):
            surface.say(route, help_text(conversation.agent))
            return True
        if threads is None:
            return False
        if command[0] in NAMES and surface.commands is not None:
            daemon_command = _daemon_command(surface, text, conversation, route, user_id)
            surface.detach(daemon_command, f"telegram-/{command[0]}-{update_id}")
            return True
        run = _run_command(surface, threads, command, conversation, route, user_id)
        if command[0] in _ASKS_THE_THREAD:
            surface.detach(run, f"telegram-/{command[0]}-{update_id}")
        else:
            await run
        return True
    if odd is not None:
        log.info("telegram.unsupported_message", chat=chat.id, kind=odd)
        surface.say(
            route,
            f"🙏 Sorry, I cannot take a {odd}. Send me text, a voice note, a photo, a video or "
            "a file.",
            reply_to=message.message_id,
        )
        return True
    if threads is None:
        return False
    thread_id = await surface.track(conversation)
    body = text.replace(f"@{username}", "").strip() if username else text
    attachments: list[str] = []
    if carried is not None:
        _typing(surface, route)
        received = await take(surface, message, carried, route, body, update_id)
        if received is None:
            return True
        body, attachments = received.text, received.attachments
    if group:
        seen = surface.context.pop(conversation.conversation, [])
        if seen:
            context = "\n".join(seen[-surface.config.group_context :])
            body = (
                f"Recent messages in this group chat, for context:\n{context}\n\n"
                f"{_author(message)} asks you: {body}"
            )
    interaction = ev.Interaction(
        id=f"tg-{surface.bot_id}-{update_id}",
        text=body,
        user=f"telegram:{user_id}",
        attachments=attachments,
    )
    surface.replies[interaction.id] = message.message_id
    _typing(surface, route)
    thread = await open_conversation(threads, route.key)
    await surface.directory.record_interaction(thread_id, interaction)
    # Accepted: the interaction is in the store as pending. Into the thread's mailbox and
    # marked processed with no await in between; the answer arrives as thread events, so the
    # surface never waits for the thread to start the turn (Codex may take its time).
    reply = post_message(thread, interaction)
    assert surface.inbox is not None
    surface.inbox.mark_processed(update_id)
    surface.detach(reply, f"telegram-message-{interaction.id}")
    return True


_ASKS_THE_THREAD = frozenset({"stop", "status", "approvals"})
"""Commands that wait on the conversation's thread actor, so they run beside the surface."""


def _typing(surface: TelegramSurface, route: Route) -> None:
    bot = surface.bot
    assert bot is not None

    async def typing() -> None:
        await bot.send_chat_action(
            route.chat_id, ChatAction.TYPING, message_thread_id=route.topic_id
        )

    surface.outbox(route.chat_id).put("sendChatAction", typing)


async def _daemon_command(
    surface: TelegramSurface,
    text: str,
    conversation: Conversation,
    route: Route,
    user_id: int | None,
) -> None:
    """One of the daemon's chat commands (`piano.commands`); an ``admin`` is the owner."""
    assert surface.commands is not None
    assert surface.access is not None
    thread_id = await surface.track(conversation)
    reply = await surface.commands.run(
        text,
        system=surface.system,
        key=route.key,
        thread_id=thread_id,
        user=f"telegram:{user_id}",
        owner=surface.access.allows(user_id, route.chat_id, needs="admin"),
    )
    if reply is not None:
        surface.say(route, f"<pre>{_e(reply)}</pre>")


async def _run_command(
    surface: TelegramSurface,
    threads: ActorRef,
    command: tuple[str, str],
    conversation: Conversation,
    route: Route,
    user_id: int | None,
) -> None:
    name, arguments = command
    match name:
        case "new":
            thread_id = await new_conversation(threads, route.key)
            surface.follow(thread_id, conversation)
            surface.say(route, "🆕 Started a fresh thread.")
        case "stop":
            stopped = await interrupt(await open_conversation(threads, route.key))
            surface.say(route, "⏹ Stopping the turn…" if stopped else "💤 Nothing is running.")
        case "status":
            await surface.track(conversation)
            status = await conversation_status(await open_conversation(threads, route.key))
            surface.say(route, status_text(conversation.agent, status, surface.web_address))
        case "agent":
            await _agent(surface, arguments, conversation, route, user_id)
        case "approvals":
            status = await conversation_status(await open_conversation(threads, route.key))
            pending = [
                surface.approvals[approval]
                for approval in status.approvals
                if approval in surface.approvals
            ]
            if not pending:
                surface.say(route, "✅ No pending approvals.")
            for view in pending:
                surface.show_approval(view)
        case "transcript":
            thread_id = await surface.track(conversation)
            markdown = await surface.transcripts(thread_id) if surface.transcripts else None
            if markdown is None and surface.history.get(thread_id):
                markdown = f"# Thread {thread_id}\n\n" + "\n\n".join(surface.history[thread_id])
            if not markdown:
                surface.say(route, "📭 Nothing to export yet.")
            else:
                surface.send_document(
                    route, markdown.encode(), f"transcript-{thread_id}.md", "🧾 Transcript"
                )
        case _:
            surface.say(route, f"❓ Unknown command /{_e(name)}. Try /help.")


async def _agent(
    surface: TelegramSurface,
    arguments: str,
    conversation: Conversation,
    route: Route,
    user_id: int | None,
) -> None:
    assert surface.access is not None
    if not arguments:
        lines = [
            f"{'▶️' if agent == conversation.agent else '▫️'} {_e(agent)}" for agent in surface.agents
        ]
        surface.say(route, "Agents (switch with /agent NAME):\n" + "\n".join(lines))
        return
    if not surface.access.allows(user_id, route.chat_id, needs="admin"):
        surface.access.audit(
            "agent", "refused", user_id=user_id, chat_id=route.chat_id, detail=arguments
        )
        surface.say(route, "🙏 Only an admin may switch the agent.")
        return
    if arguments not in surface.agents:
        surface.say(route, f"❓ No agent named {_e(arguments)}. Try /agent.")
        return
    switched = dataclasses.replace(conversation, agent=arguments)
    await surface.track(switched)
    surface.access.audit("agent", "done", user_id=user_id, chat_id=route.chat_id, detail=arguments)
    surface.say(route, f"🤖 This chat now talks to <b>{_e(arguments)}</b>.")


async def _button(surface: TelegramSurface, update: Update) -> bool:
    assert surface.access is not None
    assert surface.bot is not None
    query = update.callback_query
    assert query is not None
    bot = surface.bot
    message = query.message
    chat_id = message.chat.id if message is not None else query.from_user.id
    user_id = query.from_user.id

    def answer(text: str, alert: bool = False) -> None:
        async def send() -> None:
            await bot.answer_callback_query(query.id, text=text, show_alert=alert)

        surface.outbox(chat_id).put("answerCallbackQuery", send)

    decoded = decode_decision(query.data or "")
    if decoded is None:
        answer("This button is not mine.")
        return True
    decision, token = decoded
    if not surface.access.allows(user_id, chat_id):
        surface.access.audit("approval", "refused", user_id=user_id, chat_id=chat_id, detail=token)
        answer("Sorry, you may not decide this.", alert=True)
        return True
    view = surface.approval_for(token)
    if view is None:
        answer("This request is no longer pending.")
        if message is not None:
            message_id = message.message_id

            async def unbutton() -> None:
                await bot.edit_message_reply_markup(chat_id, message_id, reply_markup=None)

            surface.outbox(chat_id).put("editMessageReplyMarkup", unbutton)
        return True
    threads = surface.system.whereis(THREADS)
    if threads is None:
        return False
    thread = await open_conversation(threads, view.route.key)
    by = query.from_user.full_name or f"telegram:{user_id}"
    surface.detach(
        _decide(surface, thread, view.approval_id, decision, by, user_id, chat_id, answer),
        f"telegram-decide-{update.update_id}",
    )
    return True


async def _decide(
    surface: TelegramSurface,
    thread: ActorRef,
    approval_id: str,
    decision: ev.Decision,
    by: str,
    user_id: int,
    chat_id: int,
    answer: Callable[[str], None],
) -> None:
    """Pass the decision to the thread (beside the surface: the thread may be busy)."""
    assert surface.access is not None
    decided = await decide(thread, approval_id, decision, by)
    surface.access.audit(
        "approval",
        "done" if decided else "failed",
        user_id=user_id,
        chat_id=chat_id,
        detail=f"{decision} {approval_id}",
    )
    answer(
        {"accept": "Approved", "decline": "Denied", "cancel": "Cancelling the turn"}[decision]
        if decided
        else "This request is no longer pending."
    )
