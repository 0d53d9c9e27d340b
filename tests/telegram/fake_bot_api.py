"""A Bot API stand-in on 127.0.0.1 that python-telegram-bot talks to as if it were Telegram.

`FakeBotApi` serves ``/bot<token>/<method>`` (GET or POST; query, JSON, urlencoded and multipart
bodies — PTB sends form fields where every non-string value is JSON-encoded) with Telegram's
semantics for what Piano uses:

- ``getUpdates`` long-polls on a condition: `offset` confirms (forgets) every earlier update,
  a second concurrent call ends the first with 409 Conflict, as Telegram does;
- ``sendMessage``/``editMessageText``/``editMessageReplyMarkup`` keep the chat's messages, and
  an edit that changes nothing is refused with 400 "message is not modified";
- ``sendDocument`` (multipart) keeps the file; ``answerCallbackQuery``, ``sendChatAction``,
  ``setMyCommands``, ``getMe``, ``setWebhook``/``deleteWebhook`` are recorded;
- ``getFile`` answers a `file_path` for a file a test put up, served (GET) under
  ``/file/bot<token>/<file_path>`` as Telegram does; `hold_downloads` keeps downloads waiting
  until `release_downloads`, and every download is counted in `downloads`;
- faults: `fail_next` answers the next calls of a method (or of any, ``"*"``) with an error,
  e.g. 429 with ``parameters.retry_after`` or 502 Bad Gateway; `outage` drops every connection
  without an answer (a long poll in progress too) until `end_outage`, as when Telegram or the
  network is down; every call refused so is recorded in `dropped`;
- the rules Piano's messages must follow: a text of 1 to 4096 characters (after entity
  parsing), a caption of at most 1024, and well-formed Telegram HTML with ``parse_mode=HTML``
  (only Telegram's tags, closed in order, ``&`` escaped) — else 400 as Telegram answers.

Tests push updates (`push_message`, `push_callback`, `push_voice`, `push_photo`,
`push_document`, `push_video`, `push_content`) and wait on what the bot did
(`wait_for`); every call is recorded with the loop time it arrived.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

from aiohttp import BodyPartReader, web

__all__ = ["BOT_ID", "BOT_USERNAME", "Call", "FakeBotApi"]

BOT_ID = 999
BOT_USERNAME = "piano_bot"
_TEXT_FIELDS = {
    "text",
    "caption",
    "parse_mode",
    "action",
    "url",
    "secret_token",
    "callback_query_id",
    "description",
    "short_description",
    "language_code",
}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)


@dataclass
class _Failure:
    method: str
    status: int
    description: str
    retry_after: int | None
    count: int
    when: Callable[[dict[str, Any]], bool] | None = None


class FakeBotApi:
    """See the module documentation."""

    def __init__(self, token: str = "123456:TEST-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.commands: list[str] = []
        """The command names of the last accepted ``setMyCommands``."""
        self.updates: list[dict[str, Any]] = []
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}
        self.forums: set[int] = set()
        self.confirmed = 0
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._poll_generation = 0
        self._changed = asyncio.Condition()
        self._failures: list[_Failure] = []
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.files: dict[str, bytes] = {}
        self.downloads: list[str] = []
        self._file_ids = itertools.count(1)
        self._downloads_open = asyncio.Event()
        self._downloads_open.set()
        self.download_waiting = asyncio.Event()
        self.down = False
        self.dropped: list[Call] = []
        self._outage_trigger: Callable[[Call], bool] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return self.base_url

    async def stop(self) -> None:
        self._closing = True
        self._downloads_open.set()
        await self._notify()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeBotApi:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- what tests do ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        status: int = 429,
        *,
        retry_after: int | None = 1,
        description: str = "Too Many Requests: retry later",
        count: int = 1,
        when: Callable[[dict[str, Any]], bool] | None = None,
    ) -> None:
        """Answer the next `count` calls of `method` (``"*"``: any) whose parameters satisfy
        `when` with `status`."""
        self._failures.append(_Failure(method, status, description, retry_after, count, when))

    def outage_from(self, predicate: Callable[[Call], bool]) -> None:
        """Start an `outage` at the first call matching `predicate` (which is dropped)."""
        self._outage_trigger = predicate

    async def outage(self) -> None:
        """Drop every connection from now on, without an answer, until `end_outage`."""
        self.down = True
        await self._notify()

    async def end_outage(self) -> None:
        self.down = False
        await self._notify()

    async def wait_dropped(self, method: str, count: int = 1, timeout: float = 60) -> None:
        """Wait until `count` calls of `method` were dropped by the outage."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(
                lambda: sum(c.method == method for c in self.dropped) >= count
            )

    async def push_message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int = 1001,
        first_name: str = "Ada",
        topic: int | None = None,
        reply_to: int | None = None,
        title: str = "Group",
    ) -> dict[str, Any]:
        """Queue a message update from `user_id` in `chat_id` (negative: a supergroup)."""
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id, title),
            "from": {"id": user_id, "is_bot": False, "first_name": first_name},
            "text": text,
        }
        entities = [
            {"type": "mention", "offset": m.start(), "length": len(m.group())}
            for m in re.finditer(r"@\w+", text)
        ]
        if text.startswith("/"):
            entities.insert(0, {"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
        if entities:
            message["entities"] = entities
        if topic is not None:
            message["message_thread_id"] = topic
            message["is_topic_message"] = True
        if reply_to is not None:
            message["reply_to_message"] = self.messages[(chat_id, reply_to)]
        self.messages[(chat_id, message["message_id"])] = message
        return await self.push({"message": message})

    async def push_callback(
        self, chat_id: int, message_id: int, data: str, *, user_id: int = 1001
    ) -> dict[str, Any]:
        """Queue a button press on the bot's message `message_id`."""
        return await self.push(
            {
                "callback_query": {
                    "id": f"cb{next(self._update_ids)}",
                    "from": {"id": user_id, "is_bot": False, "first_name": "Ada"},
                    "chat_instance": str(chat_id),
                    "data": data,
                    "message": self.messages[(chat_id, message_id)],
                }
            }
        )

    def put_file(self, data: bytes) -> str:
        """Make `data` downloadable; its file id."""
        file_id = f"file{next(self._file_ids)}"
        self.files[file_id] = data
        return file_id

    def _media_message(
        self, chat_id: int, user_id: int, caption: str | None, extra: dict[str, Any]
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": {"id": user_id, "is_bot": False, "first_name": "Ada"},
            **extra,
        }
        if caption:
            message["caption"] = caption
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _file(self, data: bytes, size: int | None) -> dict[str, Any]:
        file_id = self.put_file(data)
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(data) if size is None else size,
        }

    async def push_voice(
        self,
        chat_id: int,
        data: bytes,
        *,
        user_id: int = 1001,
        size: int | None = None,
        duration: int = 3,
    ) -> dict[str, Any]:
        """Queue a voice note (`size`: the size announced, if not the data's)."""
        voice = {**self._file(data, size), "duration": duration, "mime_type": "audio/ogg"}
        return await self.push(
            {"message": self._media_message(chat_id, user_id, None, {"voice": voice})}
        )

    async def push_photo(
        self,
        chat_id: int,
        sizes: list[bytes],
        *,
        caption: str | None = None,
        user_id: int = 1001,
        announced: list[int] | None = None,
    ) -> dict[str, Any]:
        """Queue a photo in several sizes, smallest first, as Telegram sends them."""
        photo = [
            {**self._file(data, announced[n] if announced else None), "width": 90 * (n + 1),
             "height": 60 * (n + 1)}
            for n, data in enumerate(sizes)
        ]  # fmt: skip
        return await self.push(
            {"message": self._media_message(chat_id, user_id, caption, {"photo": photo})}
        )

    async def push_document(
        self,
        chat_id: int,
        data: bytes,
        name: str,
        *,
        mime: str = "application/octet-stream",
        caption: str | None = None,
        user_id: int = 1001,
        size: int | None = None,
    ) -> dict[str, Any]:
        document = {**self._file(data, size), "file_name": name, "mime_type": mime}
        return await self.push(
            {"message": self._media_message(chat_id, user_id, caption, {"document": document})}
        )

    async def push_video(
        self, chat_id: int, data: bytes, *, name: str = "clip.mp4", user_id: int = 1001
    ) -> dict[str, Any]:
        video = {
            **self._file(data, None),
            "width": 320,
            "height": 240,
            "duration": 2,
            "file_name": name,
            "mime_type": "video/mp4",
        }
        return await self.push(
            {"message": self._media_message(chat_id, user_id, None, {"video": video})}
        )

    async def push_content(
        self, chat_id: int, content: dict[str, Any], *, user_id: int = 1001
    ) -> dict[str, Any]:
        """Queue a message carrying `content` as is (a sticker, a location...)."""
        return await self.push({"message": self._media_message(chat_id, user_id, None, content)})

    def hold_downloads(self) -> None:
        self._downloads_open.clear()

    def release_downloads(self) -> None:
        self._downloads_open.set()

    async def push(self, body: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **body}
        self.updates.append(update)
        await self._notify()
        return update

    def of(self, method: str, chat_id: int | None = None) -> list[Call]:
        return [
            c
            for c in self.calls
            if c.method == method and (chat_id is None or c.params.get("chat_id") == chat_id)
        ]

    async def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 20) -> Call:
        """The first recorded call (past or future) matching `predicate`."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for call in self.calls[seen:]:
                    if predicate(call):
                        return call
                seen = len(self.calls)
                async with self._changed:
                    if len(self.calls) == seen:
                        await self._changed.wait()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 20) -> None:
        """Wait until `predicate` holds, checked after every call the API answers."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(predicate)

    async def wait_confirmed(self, update_id: int, timeout: float = 20) -> None:
        """Wait until getUpdates has confirmed (asked past) `update_id`."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.confirmed >= update_id)

    # -- the API ---------------------------------------------------------------------------

    def _chat(self, chat_id: int, title: str = "Group") -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "Ada"}
        chat: dict[str, Any] = {"id": chat_id, "type": "supergroup", "title": title}
        if chat_id in self.forums:
            chat["is_forum"] = True
        return chat

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
        raw: dict[str, Any] = dict(request.query)
        files: dict[str, tuple[str, bytes]] = {}
        if request.method == "POST" and request.can_read_body:
            kind = request.content_type
            if kind == "application/json":
                return {**raw, **(await request.json())}, files
            if kind == "multipart/form-data":
                reader = await request.multipart()
                async for part in reader:
                    assert isinstance(part, BodyPartReader)
                    name = part.name or ""
                    if part.filename:
                        files[name] = (part.filename, bytes(await part.read()))
                    else:
                        raw[name] = await part.text()
            else:
                raw.update(await request.post())
        params: dict[str, Any] = {}
        for key, value in raw.items():
            if key in _TEXT_FIELDS or not isinstance(value, str):
                params[key] = value
                continue
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params, files

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        method = request.match_info["method"]
        params, files = await self._params(request)
        trigger = self._outage_trigger
        if trigger is not None and trigger(Call(method, params, 0.0, files)):
            self._outage_trigger = None
            self.down = True
        if self.down:
            return await self._drop(request, method, params)
        for failure in self._failures:
            if (
                failure.method in (method, "*")
                and failure.count > 0
                and (failure.when is None or failure.when(params))
            ):
                failure.count -= 1
                self._record(method, params, files)
                return _error(failure.status, failure.description, failure.retry_after)
        if method == "getUpdates":
            return await self._get_updates(request, params)
        self._record(method, params, files)
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            return _error(404, "Not Found")
        result: Any = handler(params, files)
        if isinstance(result, web.Response):
            return result
        await self._notify()
        return web.json_response({"ok": True, "result": result})

    async def _drop(
        self, request: web.Request, method: str, params: dict[str, Any]
    ) -> web.Response:
        """Close the connection without an answer: the client sees a connection error."""
        self.dropped.append(Call(method, params, asyncio.get_running_loop().time()))
        await self._notify()
        assert request.transport is not None
        request.transport.abort()
        return web.Response(status=503)

    def _record(self, method: str, params: dict[str, Any], files: dict[str, Any]) -> None:
        self.calls.append(Call(method, params, asyncio.get_running_loop().time(), files))

    async def _get_updates(self, request: web.Request, params: dict[str, Any]) -> web.Response:
        offset = int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        self._record("getUpdates", params, {})
        self._poll_generation += 1
        generation = self._poll_generation
        async with self._changed:
            if offset:
                self.updates = [u for u in self.updates if u["update_id"] >= offset]
                self.confirmed = max(self.confirmed, offset - 1)
            self._changed.notify_all()
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(
                        lambda: (
                            bool(self.updates)
                            or self._closing
                            or self.down
                            or generation != self._poll_generation
                        )
                    )
            except TimeoutError:
                pass
        if self.down:
            return await self._drop(request, "getUpdates", params)
        if generation != self._poll_generation:
            return _error(409, "Conflict: terminated by other getUpdates request")
        limit = int(params.get("limit") or 100)
        return web.json_response({"ok": True, "result": self.updates[:limit]})

    def _api_getFile(self, params: dict[str, Any], files: Any) -> Any:
        file_id = str(params.get("file_id"))
        data = self.files.get(file_id)
        if data is None:
            return _error(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": len(data),
            "file_path": f"documents/{file_id}.bin",
        }

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        file_id = path.rsplit("/", 1)[-1].removesuffix(".bin")
        self._record("download", {"path": path}, {})
        await self._notify()
        self.download_waiting.set()
        await self._downloads_open.wait()
        data = self.files.get(file_id)
        if data is None:
            return web.Response(status=404)
        self.downloads.append(file_id)
        return web.Response(body=data, content_type="application/octet-stream")

    def _api_getMe(self, params: dict[str, Any], files: Any) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Piano",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": True,
            "supports_inline_queries": False,
        }

    def _api_sendMessage(self, params: dict[str, Any], files: Any) -> Any:
        refusal = _check_text(str(params.get("text", "")), params.get("parse_mode"), 4096)
        if refusal is not None:
            return _error(400, refusal)
        return self._new_message(params, {"text": params["text"]})

    def _api_sendDocument(self, params: dict[str, Any], files: Any) -> Any:
        if "document" not in files:
            return _error(400, "Bad Request: there is no document in the request")
        refusal = _check_text(str(params.get("caption", "")), params.get("parse_mode"), 1024, True)
        if refusal is not None:
            return _error(400, refusal)
        name, data = files["document"]
        document = {"file_id": f"f{len(data)}", "file_unique_id": "u", "file_name": name}
        extra: dict[str, Any] = {"document": document}
        if params.get("caption"):
            extra["caption"] = params["caption"]
        return self._new_message(params, extra)

    def _new_message(self, params: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self._chat(chat_id),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Piano"},
            **extra,
        }
        if params.get("message_thread_id") is not None:
            message["message_thread_id"] = params["message_thread_id"]
            message["is_topic_message"] = True
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _api_editMessageText(self, params: dict[str, Any], files: Any) -> Any:
        key = (int(params["chat_id"]), int(params["message_id"]))
        message = self.messages.get(key)
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        refusal = _check_text(str(params.get("text", "")), params.get("parse_mode"), 4096)
        if refusal is not None:
            return _error(400, refusal)
        markup = params.get("reply_markup")
        if message.get("text") == params["text"] and message.get("reply_markup") == markup:
            return _error(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup",
            )
        message["text"] = params["text"]
        if markup:
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)
        return message

    def _api_editMessageReplyMarkup(self, params: dict[str, Any], files: Any) -> Any:
        message = self.messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None:
            return _error(400, "Bad Request: message to edit not found")
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        else:
            message.pop("reply_markup", None)
        return message

    def _api_answerCallbackQuery(self, params: dict[str, Any], files: Any) -> bool:
        return True

    def _api_sendChatAction(self, params: dict[str, Any], files: Any) -> bool:
        return True

    def _api_setMyCommands(self, params: dict[str, Any], files: Any) -> Any:
        # Telegram's rules: at most 100 commands, each 1-32 of a-z, 0-9 and _, with a
        # description of 1-256 characters (else 400 BOT_COMMAND_INVALID / ..._DESCRIPTION_...).
        commands = params.get("commands") or []
        if len(commands) > 100:
            return _error(400, "Bad Request: too many commands")
        for command in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", str(command.get("command", ""))):
                return _error(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                return _error(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        self.commands = [str(command["command"]) for command in commands]
        return True

    def _api_deleteWebhook(self, params: dict[str, Any], files: Any) -> bool:
        return True

    def _api_setWebhook(self, params: dict[str, Any], files: Any) -> bool:
        return True


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if status == 429 and retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
        body["description"] = f"Too Many Requests: retry after {retry_after}"
    return web.json_response(body, status=status)


_TAGS = {
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
    "code", "pre", "blockquote", "tg-emoji",
}  # fmt: skip


class _TelegramHtml(HTMLParser):
    """Telegram's HTML rules, as far as they refuse a message."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.error: str | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _TAGS:
            self.error = self.error or f'Unsupported start tag "{tag}"'
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            self.error = self.error or f'Unmatched end tag "{tag}"'
            return
        self.open.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _check_text(text: str, parse_mode: object, limit: int, empty_ok: bool = False) -> str | None:
    """Telegram's refusal of a text (or caption), None if it accepts it."""
    if parse_mode == "HTML":
        if re.search(r"&(?![a-zA-Z]+;|#\d+;|#x[0-9a-fA-F]+;)", text):
            return "Bad Request: can't parse entities: unsupported character entity"
        parser = _TelegramHtml()
        parser.feed(text)
        parser.close()
        error = parser.error or (f'Unclosed tag "{parser.open[-1]}"' if parser.open else None)
        if error is not None:
            return f"Bad Request: can't parse entities: {error}"
        text = "".join(parser.text)
    if not text.strip() and not empty_ok:
        return "Bad Request: message text is empty"
    if len(text) > limit:
        return (
            "Bad Request: message is too long"
            if limit == 4096
            else ("Bad Request: message caption is too long")
        )
    return None
