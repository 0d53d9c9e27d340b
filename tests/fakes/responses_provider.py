"""A scripted fake of the OpenAI Responses API, good enough for the real `codex app-server`.

`FakeResponsesProvider` serves `POST /v1/responses` on 127.0.0.1 (a free port) and answers each
request with the next scripted reply (`provider.script(Text("hi"), ExecCommand("echo hi"))`),
or with `default` once the script is empty. Every request body is recorded in `requests`;
`wait_requests(n)` waits until n have arrived. `write_codex_home` writes an isolated CODEX_HOME
whose config.toml points codex at the provider. Codex reads the `type` inside each `data:`
line, needs `response.output_item.added` before deltas, and `response.completed.response.id`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from aiohttp import web


@dataclass(frozen=True)
class Text:
    """An assistant message streamed as `deltas` output_text deltas."""

    text: str
    deltas: int = 3


@dataclass(frozen=True)
class FunctionCall:
    """A function call by tool name; ``mcp__<server>__<tool>`` calls an MCP tool."""

    name: str
    arguments: dict[str, Any]
    call_id: str | None = None


@dataclass(frozen=True)
class ExecCommand:
    """An `exec_command` call; `require_escalated` asks for approval under `on-request`."""

    cmd: str
    require_escalated: bool = False
    justification: str = "Please allow this command."
    call_id: str | None = None


@dataclass(frozen=True)
class ApplyPatch:
    """An `apply_patch` custom tool call (freeform patch text)."""

    patch: str
    call_id: str | None = None


@dataclass(frozen=True)
class HttpError:
    status: int = 500
    body: str = "injected failure"


@dataclass(frozen=True)
class Failed:
    """A `response.failed` event."""

    message: str = "injected response.failed"


@dataclass(frozen=True)
class Cut:
    """Start a message, then close the stream before `response.completed`."""

    text: str = "partial"


@dataclass
class Hang:
    """Open the stream and send nothing until `release()` (or the provider closes); then
    `then` (a message in the same response, e.g. one written once the test has broken
    something) or nothing."""

    then: Text | None = None
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()


Reply: TypeAlias = Text | FunctionCall | ExecCommand | ApplyPatch | HttpError | Failed | Cut | Hang

USAGE = {
    "input_tokens": 120,
    "input_tokens_details": {"cached_tokens": 20},
    "output_tokens": 30,
    "output_tokens_details": {"reasoning_tokens": 5},
    "total_tokens": 150,
}


def _chunks(text: str, n: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, n)))
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


class FakeResponsesProvider:
    """The fake provider; use `async with` or `start()`/`close()`."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default: Reply = default or Text("ok")
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Reply] = deque()
        self._ids = itertools.count(1)
        self._arrived = asyncio.Condition()
        self._hangs: list[Hang] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Reply) -> None:
        self._script.extend(replies)

    async def wait_requests(self, n: int) -> list[dict[str, Any]]:
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= n)
        return self.requests

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/responses", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)  # after `close`: the same port
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving (the provider is down); `start` serves again on the same port."""
        for hang in self._hangs:
            hang.release()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeResponsesProvider:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        reply = self._script.popleft() if self._script else self.default
        async with self._arrived:
            self.requests.append(body)
            self._arrived.notify_all()
        if isinstance(reply, HttpError):
            return web.Response(status=reply.status, text=reply.body)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        resp_id = f"resp_{next(self._ids)}"

        async def send(event: dict[str, Any]) -> None:
            await resp.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

        await send({"type": "response.created", "response": {"id": resp_id}})
        if isinstance(reply, Hang):
            self._hangs.append(reply)
            await reply.released.wait()
            if reply.then is not None:
                await self._message(send, reply.then.text, reply.then.deltas)
        elif isinstance(reply, Text | Cut):
            await self._message(send, reply.text, reply.deltas if isinstance(reply, Text) else 1)
        elif isinstance(reply, Failed):
            error = {"code": "server_error", "message": reply.message}
            await send({"type": "response.failed", "response": {"id": resp_id, "error": error}})
        else:
            await send({"type": "response.output_item.done", "item": self._tool_item(reply)})
        if not isinstance(reply, Cut | Failed):
            done = {"id": resp_id, "usage": USAGE}
            await send({"type": "response.completed", "response": done})
        await resp.write_eof()
        return resp

    async def _message(self, send: Any, text: str, deltas: int) -> None:
        item_id = f"msg_{next(self._ids)}"
        item = {"type": "message", "id": item_id, "role": "assistant", "content": []}
        await send({"type": "response.output_item.added", "output_index": 0, "item": item})
        part = {"type": "output_text", "text": "", "annotations": []}
        await send({"type": "response.content_part.added", "item_id": item_id, "part": part})
        for chunk in _chunks(text, deltas):
            await send({"type": "response.output_text.delta", "item_id": item_id, "delta": chunk})
        await send({"type": "response.output_text.done", "item_id": item_id, "text": text})
        full = {**item, "content": [{**part, "text": text}]}
        await send({"type": "response.output_item.done", "output_index": 0, "item": full})

    def _tool_item(self, reply: FunctionCall | ExecCommand | ApplyPatch) -> dict[str, Any]:
        call_id = reply.call_id or f"call_{next(self._ids)}"
        if isinstance(reply, ApplyPatch):
            return {
                "type": "custom_tool_call",
                "call_id": call_id,
                "name": "apply_patch",
                "input": reply.patch,
            }
        if isinstance(reply, ExecCommand):
            args: dict[str, Any] = {"cmd": reply.cmd}
            if reply.require_escalated:
                args |= {
                    "sandbox_permissions": "require_escalated",
                    "justification": reply.justification,
                }
            name = "exec_command"
        else:
            name, args = reply.name, reply.arguments
        item = {
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": json.dumps(args),
        }
        if name.startswith("mcp__"):
            # codex offers MCP tools as a namespace: `mcp__piano__web_fetch` is sent as the call
            # `web_fetch` in namespace `mcp__piano` (a flat name is refused as unsupported)
            item["namespace"], _, item["name"] = name.rpartition("__")
        return item


def write_codex_home(
    home: Path,
    base_url: str,
    *,
    model: str = "gpt-5.5",
    approval_policy: str = "on-request",
    sandbox_mode: str = "workspace-write",
    extra_toml: str = "",
) -> Path:
    """Write `home/config.toml` for the fake provider; `home` must not lie under $TMPDIR."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f"""model = "{model}"
model_provider = "fake"
approval_policy = "{approval_policy}"
sandbox_mode = "{sandbox_mode}"
{extra_toml}
[features]
plugins = false
unbounded_connection_retries = false

[model_providers.fake]
name = "fake"
base_url = "{base_url}"
wire_api = "responses"
request_max_retries = 1
stream_max_retries = 1
stream_idle_timeout_ms = 20000
"""
    )
    return home


@dataclass(frozen=True)
class CodexDirs:
    """An isolated CODEX_HOME with its own TMPDIR beside it (never above it) and a work dir."""

    root: Path
    home: Path
    tmp: Path
    work: Path

    @property
    def env(self) -> dict[str, str]:
        return {"CODEX_HOME": str(self.home), "TMPDIR": str(self.tmp)}


HOMES = Path(__file__).resolve().parents[2] / ".codex" / "test-homes"


def make_codex_dirs(base: Path = HOMES) -> CodexDirs:
    """Create fresh dirs under `base` (git-ignored `.codex/test-homes` by default).

    Codex refuses to put its sandbox helpers under the temp dir, and then every sandboxed
    command fails; so CODEX_HOME must not lie under $TMPDIR. The dirs live in the repo, and the
    process gets a TMPDIR that is a sibling of CODEX_HOME, which holds even if the repo itself
    was cloned under /tmp.
    """
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="codex-", dir=base))
    dirs = CodexDirs(root=root, home=root / "home", tmp=root / "tmp", work=root / "work")
    for path in (dirs.home, dirs.tmp, dirs.work):
        path.mkdir()
    return dirs
