"""A scripted OpenAI-compatible server on 127.0.0.1 for the real openai SDK.

`FakeOpenAI` serves ``GET /v1/models`` (`models`), and ``POST /v1/responses`` and
``POST /v1/chat/completions``, streamed as
server-sent events with the fields the SDK's models carry, and answers each request with the
next scripted reply (`fake.script(Text("hi"), Call("web_fetch", {"url": ...}))`), or `default`
once the script is empty. Before the script it plays the provider's own refusals: a request
whose key is not `api_key` gets 401, a model not in `models` gets 404, each with OpenAI's
error body. `Status` injects an HTTP error (429 with ``Retry-After``, 5xx); `Truncate`
streams some text and closes without a finish reason or ``response.completed``; `Hang`
streams nothing until released. Every request is recorded (`requests`, `wait_requests`).

``POST /v1/audio/transcriptions`` (multipart, as the SDK's ``audio.transcriptions.create``
sends it) answers ``{"text": ...}`` with the next of `transcripts` (`default_transcript`
once empty); it is recorded with the form's fields and the uploaded file's name and bytes.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from aiohttp import web


@dataclass(frozen=True)
class Text:
    text: str
    deltas: int = 3


@dataclass(frozen=True)
class Call:
    """One function call (several in one reply: `Calls`)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Calls:
    calls: tuple[Call, ...]


@dataclass(frozen=True)
class Status:
    status: int = 500
    message: str = "injected failure"
    retry_after: float | None = None


@dataclass(frozen=True)
class Truncate:
    text: str = "partial answ"


@dataclass
class Hang:
    """Stream nothing until released, then play `then` (or end with no output)."""

    then: Text | Call | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


Reply: TypeAlias = Text | Call | Calls | Status | Truncate | Hang


@dataclass(frozen=True)
class Request:
    path: str
    body: dict[str, Any]
    authorization: str


def _chunks(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeOpenAI:
    """The fake server; `async with FakeOpenAI() as fake: fake.base_url`."""

    def __init__(self, api_key: str = "sk-test", models: tuple[str, ...] = ("fake-model",)):
        self.api_key = api_key
        self.models = models
        self.default: Reply = Text("ok")
        self.requests: list[Request] = []
        self._script: deque[Reply] = deque()
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._hangs: list[Hang] = []
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.transcripts: deque[str] = deque()
        self.default_transcript = "hello from a voice note"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    async def wait_requests(self, n: int) -> list[Request]:
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= n)
        return self.requests

    async def __aenter__(self) -> FakeOpenAI:
        app = web.Application()
        app.router.add_post("/v1/responses", self._handle)
        app.router.add_post("/v1/chat/completions", self._handle)
        app.router.add_post("/v1/audio/transcriptions", self._transcribe)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for hang in self._hangs:
            hang.release()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _error(
        status: int, message: str, code: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
        return web.json_response(body, status=status, headers=headers)

    async def _models(self, request: web.Request) -> web.Response:
        """``GET /v1/models``: `models`, as OpenAI lists them (after the key check)."""
        if request.headers.get("Authorization", "") != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_api_key")
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        auth = request.headers.get("Authorization", "")
        async with self._arrived:
            self.requests.append(Request(request.path, body, auth))
            self._arrived.notify_all()
        if auth != f"Bearer {self.api_key}":
            shown = auth.removeprefix("Bearer ")[-4:]
            return self._error(401, f"Incorrect API key provided: ...{shown}.", "invalid_api_key")
        if body.get("model") not in self.models:
            return self._error(
                404,
                f"The model `{body.get('model')}` does not exist or you do not have access to it.",
                "model_not_found",
            )
        reply = self._script.popleft() if self._script else self.default
        if isinstance(reply, Status):
            headers = {"Retry-After": str(reply.retry_after)} if reply.retry_after else None
            return self._error(reply.status, reply.message, "injected", headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        if request.path.endswith("/responses"):
            await self._responses(response, body, reply)
        else:
            await self._chat(response, body, reply)
        await response.write_eof()
        return response

    async def _transcribe(self, request: web.Request) -> web.Response:
        form = await request.post()
        body: dict[str, Any] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                body[name] = {"filename": value.filename, "data": value.file.read()}
            else:
                body[name] = value
        auth = request.headers.get("Authorization", "")
        async with self._arrived:
            self.requests.append(Request(request.path, body, auth))
            self._arrived.notify_all()
        if auth != f"Bearer {self.api_key}":
            return self._error(401, "Incorrect API key provided.", "invalid_api_key")
        text = self.transcripts.popleft() if self.transcripts else self.default_transcript
        return web.json_response({"text": text})

    async def _hang(self, reply: Reply) -> Reply:
        if isinstance(reply, Hang):
            self._hangs.append(reply)
            await reply.released.wait()
            return reply.then or reply
        return reply

    # -- Responses API ------------------------------------------------------------------------

    async def _responses(self, out: web.StreamResponse, body: dict[str, Any], reply: Reply) -> None:
        seq = itertools.count()
        resp_id = f"resp_{next(self._ids)}"

        async def send(kind: str, **data: Any) -> None:
            event = {"type": kind, "sequence_number": next(seq), **data}
            await out.write(f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode())

        def response(status: str, output: list[Any], usage: Any = None) -> dict[str, Any]:
            return {
                "id": resp_id,
                "object": "response",
                "created_at": int(time.time()),
                "model": body.get("model"),
                "status": status,
                "output": output,
                "parallel_tool_calls": True,
                "tool_choice": "auto",
                "tools": body.get("tools", []),
                "usage": usage,
            }

        await send("response.created", response=response("in_progress", []))
        reply = await self._hang(reply)
        output: list[dict[str, Any]] = []
        if isinstance(reply, Text | Truncate):
            item_id = f"msg_{next(self._ids)}"
            item = {"type": "message", "id": item_id, "role": "assistant", "status": "in_progress"}
            await send("response.output_item.added", output_index=0, item={**item, "content": []})
            where = {"item_id": item_id, "output_index": 0, "content_index": 0}
            deltas = reply.deltas if isinstance(reply, Text) else 2
            for chunk in _chunks(reply.text, deltas):
                await send("response.output_text.delta", delta=chunk, logprobs=[], **where)
            if isinstance(reply, Truncate):
                return
            part = {"type": "output_text", "text": reply.text, "annotations": []}
            await send("response.output_text.done", text=reply.text, logprobs=[], **where)
            done = {**item, "status": "completed", "content": [part]}
            await send("response.output_item.done", output_index=0, item=done)
            output.append(done)
        elif isinstance(reply, Call | Calls):
            calls = reply.calls if isinstance(reply, Calls) else (reply,)
            for index, call in enumerate(calls):
                arguments = json.dumps(call.arguments)
                item = {
                    "type": "function_call",
                    "id": f"fc_{next(self._ids)}",
                    "call_id": f"call_{next(self._ids)}",
                    "name": call.name,
                    "arguments": arguments,
                    "status": "completed",
                }
                await send("response.output_item.added", output_index=index, item=item)
                await send("response.output_item.done", output_index=index, item=item)
                output.append(item)
        usage = {
            "input_tokens": 50,
            "input_tokens_details": {"cached_tokens": 10},
            "output_tokens": 20,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 70,
        }
        await send("response.completed", response=response("completed", output, usage))

    # -- Chat Completions -----------------------------------------------------------------------

    async def _chat(self, out: web.StreamResponse, body: dict[str, Any], reply: Reply) -> None:
        chunk_id = f"chatcmpl-{next(self._ids)}"

        async def send(
            delta: dict[str, Any] | None, finish: str | None = None, **extra: Any
        ) -> None:
            choices = (
                []
                if delta is None
                else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
            )
            chunk = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": choices,
                **extra,
            }
            await out.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await send({"role": "assistant", "content": ""})
        reply = await self._hang(reply)
        if isinstance(reply, Text | Truncate):
            deltas = reply.deltas if isinstance(reply, Text) else 2
            for chunk in _chunks(reply.text, deltas):
                await send({"content": chunk})
            if isinstance(reply, Truncate):
                return
            await send({}, "stop")
        elif isinstance(reply, Call | Calls):
            calls = reply.calls if isinstance(reply, Calls) else (reply,)
            for index, call in enumerate(calls):
                arguments = json.dumps(call.arguments)
                head = {
                    "index": index,
                    "id": f"call_{next(self._ids)}",
                    "type": "function",
                    "function": {"name": call.name, "arguments": ""},
                }
                await send({"tool_calls": [head]})
                for piece in _chunks(arguments, 2):
                    await send({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            await send({}, "tool_calls")
        usage = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
        if (body.get("stream_options") or {}).get("include_usage"):
            await send(None, usage=usage)
        await out.write(b"data: [DONE]\n\n")
